"""Who may use the UI: loopback binds are open, any other bind needs credentials or an explicit --no-auth."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from pathlib import Path

AUTH_ENV = "PAPERCHAT_AUTH"


class AuthError(ValueError):
    """The bind address and the auth settings do not allow serving."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for 0.0.0.0, :: and every other address or name."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pair(text: str, where: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user.strip() or not password:
        raise AuthError(f"{where}: expected user:password")
    return user.strip(), password


def parse_credentials(value: str) -> list[tuple[str, str]]:
    """`user:password`, or the path of a file with one `user:password` per line (# comments allowed)."""
    value = value.strip()
    if not value:
        raise AuthError(f"{AUTH_ENV} is empty")
    path = Path(value).expanduser()
    if path.is_file():
        pairs = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if line and not line.startswith("#"):
                pairs.append(_pair(line, f"{path}:{i}"))
        if not pairs:
            raise AuthError(f"{path}: no user:password lines")
        return pairs
    if ":" not in value:
        raise AuthError(f"{AUTH_ENV} must be user:password or the path of an existing file of user:password lines")
    return [_pair(value, AUTH_ENV)]


def resolve_auth(host: str, no_auth: bool, auth_value: str | None) -> list[tuple[str, str]] | None:
    """Credentials to require, or None for an open UI.

    Credentials given are always used. Without them, a loopback bind is open, and any other bind is refused
    unless `no_auth` is set (the user asked for an open network-facing UI explicitly)."""
    if auth_value and auth_value.strip():
        return parse_credentials(auth_value)
    if is_loopback(host) or no_auth:
        return None
    raise AuthError(f"refusing to serve on {host} without auth: set {AUTH_ENV}=user:password (or the path of a "
                    "file of user:password lines), bind 127.0.0.1, or pass --no-auth to serve openly")


def checker(pairs: list[tuple[str, str]]) -> Callable[[str, str], bool]:
    """A Gradio auth callable comparing in constant time."""
    table = dict(pairs)

    def check(user: str, password: str) -> bool:
        expected = table.get(user)
        ok = hmac.compare_digest((expected or "\0").encode(), (password or "").encode())
        return expected is not None and ok

    return check
