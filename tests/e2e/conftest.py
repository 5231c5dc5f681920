"""Fixtures for real-browser tests: the dashboard under `streamlit run`, and headless Chromium.

The server is started once per session on a free port and waited for through its health
endpoint; pages wait for Streamlit to go idle, never for a fixed time (DESIGN section 11).
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
STARTUP_S = 60
VIEWPORT = {"width": 1400, "height": 2200}  # tall: Streamlit scrolls its own main area, not the page
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
MAIN_HEIGHT = "() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    """Poll Streamlit's health endpoint until it answers "ok" (bounded by STARTUP_S)."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an http_proxy
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with code {server.returncode} before answering {url}; see {log}")
        try:
            with direct.open(url, timeout=2) as reply:
                if reply.read().decode().strip() == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)  # polling the health endpoint, not waiting for the page
    pytest.fail(f"streamlit did not answer {url} within {STARTUP_S} s; see {log}")


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    """The server's runs directory (PURGE_RUNS_DIR): private to the test session."""
    return tmp_path_factory.mktemp("e2e-runs")


@contextmanager
def serve_dashboard(log_path: Path, env: dict[str, str] | None = None):
    """Run `streamlit run dashboard/app.py` from the repo root, as `make run` does (the address comes
    from .streamlit/config.toml), on a free port; yield its URL once healthy, stop it on exit."""
    port = free_port()
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.fileWatcherType", "none"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        try:
            wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", server, log_path)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory, runs_dir):
    """URL of the dashboard served by `streamlit run dashboard/app.py` from the repo root."""
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    with serve_dashboard(log_path, {"PURGE_RUNS_DIR": str(runs_dir)}) as url:
        yield url


@pytest.fixture(name="serve_dashboard")
def serve_dashboard_fixture():
    return serve_dashboard


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: e2e tests drive Debian's chromium (make browser installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def wait_idle(page) -> None:
    """Until the script run in progress (if any) has finished."""
    page.wait_for_selector(IDLE, timeout=STARTUP_S * 1000)


def screenshot_whole_app(page, path: Path) -> None:
    """A screenshot of the whole main area: Streamlit scrolls inside it, so `full_page` alone
    stops at the viewport; the viewport is first grown to the main area's height."""
    height = max(VIEWPORT["height"], page.evaluate(MAIN_HEIGHT))
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size(VIEWPORT)


@pytest.fixture(name="wait_idle")
def wait_idle_fixture():
    return wait_idle


@pytest.fixture(name="screenshot_whole_app")
def screenshot_whole_app_fixture():
    return screenshot_whole_app


@pytest.fixture
def page(browser, app_url):
    """A fresh browser page on the dashboard, returned once the first script run has finished."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.goto(app_url)
    wait_idle(tab)
    yield tab
    context.close()
