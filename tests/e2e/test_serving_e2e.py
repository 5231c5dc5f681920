"""Safe to open: the dashboard listens on this machine only and reaches nothing outside it.

The server runs as `make run` runs it (address from .streamlit/config.toml, not a flag), under a
network guard (net_guard/sitecustomize.py) that logs and refuses every lookup, connection or datagram
leaving the machine; the browser's own requests are watched too.
"""

import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e

NET_GUARD = Path(__file__).resolve().parent / "net_guard"
LISTEN = "0A"  # TCP state of a listening socket in /proc/net/tcp


def guarded_env(log: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(NET_GUARD), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "PURGE_NET_LOG": str(log)}


def guard_lines(log: Path, kind: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith(kind)]


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port`, read from /proc/net/tcp{,6}."""
    found = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for row in table.read_text().splitlines()[1:] if table.exists() else []:
            local, state = row.split()[1], row.split()[3]
            address_hex, port_hex = local.split(":")
            if state == LISTEN and int(port_hex, 16) == port:
                raw = bytes.fromhex(address_hex)  # 32-bit words in the kernel's byte order
                if sys.byteorder == "little":
                    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(str(ipaddress.ip_address(raw)))
    return found


def outward_ip() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


def test_the_guard_sees_streamlits_external_ip_lookup(tmp_path):
    """The guard is not blind: Streamlit's external-IP lookup, called directly, is caught and refused."""
    log = tmp_path / "net.log"
    subprocess.run([sys.executable, "-c", "from streamlit import net_util; net_util.get_external_ip()"],
                   env={**os.environ, **guarded_env(log)}, check=True, capture_output=True, timeout=60)
    assert any("lookup checkip.amazonaws.com" in line for line in guard_lines(log, "outbound"))


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from Linux's /proc")
def test_dashboard_listens_on_loopback_and_reaches_nothing_outside(serve_dashboard, browser, wait_idle, tmp_path):
    log = tmp_path / "net.log"
    with serve_dashboard(tmp_path / "server.log", {**guarded_env(log), "PURGE_RUNS_DIR": str(tmp_path)}) as url:
        port = urlsplit(url).port
        assert listening_addresses(port) == {"127.0.0.1"}
        if (address := outward_ip()) is not None:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=5).close()

        context = browser.new_context()
        page = context.new_page()
        elsewhere = []
        page.on("request", lambda request: elsewhere.append(request.url)
                if urlsplit(request.url).scheme in ("http", "https", "ws", "wss")
                and urlsplit(request.url).netloc != urlsplit(url).netloc else None)
        page.goto(url)
        wait_idle(page)
        context.close()

    assert any("streamlit" in line for line in guard_lines(log, "loaded")), "the guard never loaded in the server"
    assert guard_lines(log, "outbound") == []
    assert elsewhere == []
