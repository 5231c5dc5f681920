"""A network guard for the serving test (tests/e2e/test_serving_e2e.py), loaded at start-up by every
Python process that has this folder on PYTHONPATH and PURGE_NET_LOG set.

It appends to $PURGE_NET_LOG one `loaded` line per process, then one `outbound` line for every name
lookup, connection or datagram that would leave the machine, and refuses it: nothing leaks during the
test, and the test reads the file to see what was tried, and from where.
"""

import ipaddress
import os
import socket
import sys
import traceback

LOG = os.environ.get("PURGE_NET_LOG")
LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _write(line: str) -> None:
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(line + "\n")


def _is_local(host) -> bool:
    if host is None:  # getaddrinfo(None, port): a wildcard for binding
        return True
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host.lower() in LOCAL_NAMES or host == "":
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False  # a name to resolve: that is a query to the resolver
    return address.is_loopback or address.is_unspecified


def _refuse(what: str) -> None:
    caller = [frame for frame in traceback.extract_stack() if frame.filename != __file__][-1]
    _write(f"outbound {what} from {caller.filename}:{caller.lineno}")
    raise OSError(f"network guard: {what} refused in a test")


def _guard_address(sock, address, verb: str) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _refuse(f"{verb} {address[0]}:{address[1]}")


def _install() -> None:
    connect, connect_ex, sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto

    def guarded_lookup(lookup):
        def guarded(host, *args, **kwargs):
            if not _is_local(host):
                _refuse(f"lookup {host}")
            return lookup(host, *args, **kwargs)
        return guarded

    def guarded_connect(self, address):
        _guard_address(self, address, "connect")
        return connect(self, address)

    def guarded_connect_ex(self, address):
        _guard_address(self, address, "connect")
        return connect_ex(self, address)

    def guarded_sendto(self, data, *args):
        _guard_address(self, args[-1], "sendto")
        return sendto(self, data, *args)

    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
        setattr(socket, name, guarded_lookup(getattr(socket, name)))
    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
    socket.socket.sendto = guarded_sendto
    _write(f"loaded pid {os.getpid()}: {' '.join(sys.orig_argv)}")


if LOG:
    _install()
