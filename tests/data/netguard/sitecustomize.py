"""Network guard for test subprocesses (on PYTHONPATH): non-loopback connects and lookups are refused
and appended to the file named by PAPERCHAT_TEST_NETLOG, which the test then reads."""

import ipaddress
import os
import socket

_LOG = os.environ.get("PAPERCHAT_TEST_NETLOG")


def _local(host: object) -> bool:
    h = str(host or "").split("%")[0]
    if h in ("", "localhost", "0.0.0.0"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> None:
    with open(_LOG, "a", encoding="utf-8") as fh:  # type: ignore[arg-type]
        fh.write(f"{os.getpid()} {what}\n")
    raise OSError(f"test network guard: refused {what}")


if _LOG:
    _connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def connect(self, addr):  # type: ignore[no-untyped-def]
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(addr[0]):
            _refuse(f"connect {addr!r}")
        return _connect(self, addr)

    def connect_ex(self, addr):  # type: ignore[no-untyped-def]
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(addr[0]):
            _refuse(f"connect {addr!r}")
        return _connect_ex(self, addr)

    def getaddrinfo(host, *args, **kw):  # type: ignore[no-untyped-def]
        if not _local(host):
            _refuse(f"lookup {host!r}")
        return _getaddrinfo(host, *args, **kw)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
