"""Typed readers for environment variables.

Each helper fails loudly (``ImproperlyConfigured``) on a value it cannot parse,
so a typo in a deployment shows up at start-up rather than as odd behaviour.
"""

import ipaddress
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_file_load(path: Path) -> bool:
    """Read ``NAME=value`` lines from ``path`` into the environment when the file exists.

    Variables already set win, so a deployment's real environment is never overridden by a leftover file.
    The demo writes its settings to ``var/.env`` so that management commands run from a fresh shell.
    """
    if not path.is_file():
        return False
    from dotenv import load_dotenv

    return load_dotenv(path, override=False)


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_required(name: str, why: str) -> str:
    """A variable that has no safe default: fail with one line that names it."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set {why}")
    return value


def env_rate(name: str, default: str) -> str | None:
    """A throttle rate such as ``120/min`` (per second, minute, hour or day), or ``off`` for no limit."""
    raw = os.environ.get(name, default).strip().lower()
    if raw in ("off", "none", ""):
        return None
    count, _, period = raw.partition("/")
    if not count.isdigit() or period[:1] not in ("s", "m", "h", "d"):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate (e.g. 120/min, 5000/hour or off)")
    return raw


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use one of 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_networks(name: str, default: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A comma-separated list of IP addresses or networks (CIDR); a bad entry stops start-up naming it."""
    networks = []
    for entry in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {entry!r} is not an IP address or network") from None
    return networks
