"""Who may use the UI: loopback binds are open, any other bind needs credentials or an explicit --no-auth.

`PAPERCHAT_AUTH` is `user:password` or a file of such lines; `alice[admin]:pw` makes alice an admin (the only
users who may change the answer backend, and only when the server runs with --allow-settings)."""

from __future__ import annotations

import hmac
import ipaddress
import re
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


_ADMIN = re.compile(r"^(.*?)\s*\[admin\]$", re.I)


def split_role(user: str) -> tuple[str, bool]:
    """('alice', True) for 'alice[admin]'; (user, False) otherwise."""
    m = _ADMIN.match(user.strip())
    return (m.group(1).strip(), True) if m else (user.strip(), False)


def _entry(text: str, where: str) -> tuple[str, str, bool]:
    user, sep, password = text.partition(":")
    name, admin = split_role(user)
    if not sep or not name or not password:
        raise AuthError(f"{where}: expected user:password (or user[admin]:password)")
    return name, password, admin


def _pair(text: str, where: str) -> tuple[str, str]:
    name, password, _ = _entry(text, where)
    return name, password


def parse_entries(value: str) -> list[tuple[str, str, bool]]:
    """(user, password, admin) from `user:password` / `user[admin]:password`, or a file of such lines."""
    value = value.strip()
    if not value:
        raise AuthError(f"{AUTH_ENV} is empty")
    path = Path(value).expanduser()
    if path.is_file():
        entries = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if line and not line.startswith("#"):
                entries.append(_entry(line, f"{path}:{i}"))
        if not entries:
            raise AuthError(f"{path}: no user:password lines")
        return entries
    if ":" not in value:
        raise AuthError(f"{AUTH_ENV} must be user:password or the path of an existing file of user:password lines")
    return [_entry(value, AUTH_ENV)]


def parse_credentials(value: str) -> list[tuple[str, str]]:
    """`user:password`, or the path of a file with one `user:password` per line (# comments allowed)."""
    return [(u, p) for u, p, _ in parse_entries(value)]


def admin_users(value: str | None) -> frozenset[str]:
    """The users marked `[admin]` in a PAPERCHAT_AUTH value (empty when unset)."""
    if not value or not value.strip():
        return frozenset()
    return frozenset(u for u, _, admin in parse_entries(value) if admin)


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
