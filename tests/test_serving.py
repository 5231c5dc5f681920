"""Serving defaults and set-up: `make run` listens on localhost unless asked, Streamlit is configured
so it looks up nothing outside the machine, and `make test` gets Chromium or says how.
The running server is checked in tests/e2e/test_serving_e2e.py."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENSURE_CHROMIUM = ROOT / "scripts" / "ensure-chromium.sh"
READ_OPTIONS = """
import json, sys
from streamlit import config
config.get_config_options(force_reparse=True)
print(json.dumps({name: [config.get_option(name), config.is_manually_set(name)] for name in sys.argv[1:]}))
"""

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def streamlit_options(*names: str) -> dict[str, list]:
    """{option: [value, manually set]} as `streamlit run` from the repo root reads them."""
    out = subprocess.run([sys.executable, "-c", READ_OPTIONS, *names], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return json.loads(out)


def test_streamlit_config_serves_localhost_and_skips_the_external_ip_lookup():
    options = streamlit_options("server.address", "browser.serverAddress", "browser.gatherUsageStats",
                                "server.showEmailPrompt", "client.toolbarMode")
    assert options["server.address"] == ["127.0.0.1", True]
    # bootstrap._print_url asks checkip.amazonaws.com for an "External URL" only when this is unset.
    assert options["browser.serverAddress"] == ["localhost", True]
    assert options["browser.gatherUsageStats"][0] is False
    assert options["server.showEmailPrompt"][0] is False
    assert options["client.toolbarMode"][0] == "viewer"  # no Deploy button


def make_run_command(*overrides: str) -> str:
    out = subprocess.run(["make", "-n", "run", *overrides], cwd=ROOT, check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return next(line for line in out.splitlines() if "streamlit run" in line)


@needs_make
def test_make_run_listens_on_localhost_unless_asked():
    assert "--server.address 127.0.0.1 --server.port 8501" in make_run_command()
    assert "--server.address 0.0.0.0 --server.port 8600" in make_run_command("ADDRESS=0.0.0.0", "PORT=8600")


def fake_bin(tmp_path: Path, uid: int, chromedriver: bool) -> Path:
    """A PATH folder whose `id -u` prints uid, with or without a chromedriver."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools = {"id": f"#!/bin/sh\necho {uid}\n"} | ({"chromedriver": "#!/bin/sh\n"} if chromedriver else {})
    for name, text in tools.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def ensure_chromium(bin_dir: Path, chromium: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CHROMIUM": str(chromium)}
    return subprocess.run(["sh", str(ENSURE_CHROMIUM)], env=env, capture_output=True, text=True, timeout=60)


def test_ensure_chromium_does_nothing_when_chromium_is_there(tmp_path):
    chromium = fake_bin(tmp_path, uid=0, chromedriver=True) / "id"  # any executable stands in
    done = ensure_chromium(chromium.parent, chromium)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_ensure_chromium_says_what_to_run_when_it_cannot_install(tmp_path):
    done = ensure_chromium(fake_bin(tmp_path, uid=1000, chromedriver=False), tmp_path / "no-chromium")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == ("make test needs Chromium for the browser tests: run  "
                           "sudo apt-get install chromium chromium-driver\n")
