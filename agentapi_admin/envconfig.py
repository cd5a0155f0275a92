"""Typed, strict readers for environment variables.

The one `environ.Env()` of the project lives here; `settings.py` is the only
caller. Every reader raises `ImproperlyConfigured` naming the variable and the
expected form, because a typo in production must stop start-up rather than
silently fall back to a default (django-environ's own `bool` turns "ture" into
False).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


def read_env_file(path: Path) -> None:
    """Load a `.env` file if present; real environment variables win."""
    if path.is_file():
        environ.Env.read_env(str(path), overwrite=False)


def read_devserver_file(path: Path) -> bool:
    """Adopt a running `make run`'s REDIS_URL and DEBUG from `path` when no Redis is configured.

    The file names its writer's pid; a file left by a killed run (dead pid) is ignored.
    Return True if the file was read.
    """
    if not path.is_file() or any(is_set(name) for name in ("REDIS_URL", "UPSTASH_REDIS_URL", "REDIS_SENTINELS")):
        return False
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    try:
        pid = int(values.pop("DEVSERVER_PID", ""))
        os.kill(pid, 0)
    except PermissionError:
        pass  # alive, owned by another user
    except (ValueError, ProcessLookupError):
        return False
    for name, value in values.items():
        os.environ.setdefault(name, value)
    return True


def is_set(name: str) -> bool:
    """Return True if the variable is present and not blank."""
    return bool(env.str(name, default="").strip())


def _fail(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={value!r} is invalid: expected {expected}.")


def string(name: str, default: str = "") -> str:
    """Return the variable as a stripped string."""
    return env.str(name, default=default).strip()


def boolean(name: str, default: bool) -> bool:
    """Return the variable as a bool, accepting true/false, yes/no, on/off, 1/0."""
    raw = string(name)
    if not raw:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise _fail(name, raw, "true or false (also yes/no, on/off, 1/0)")


def integer(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return the variable as an int within [minimum, maximum]."""
    raw = string(name)
    if not raw:
        return default
    bounds = _bounds_text(minimum, maximum)
    try:
        value = int(raw)
    except ValueError:
        raise _fail(name, raw, f"a whole number{bounds}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _fail(name, raw, f"a whole number{bounds}")
    return value


DURATION_HELP = "a duration such as 30s, 500ms, 5m, 1h or a plain number of seconds"


def parse_duration(raw: str) -> float | None:
    """Return `raw` (`3600`, `3600s`, `30s`, `500ms`, `5m`, `1h`, `1d`) in seconds, or None if it is not one."""
    match = _DURATION.match(raw)
    if not match:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "").lower() or None]


def duration(name: str, default: str, *, minimum: float = 0.0) -> float:
    """Return the variable as seconds; accepts `3600`, `3600s`, `30s`, `500ms`, `5m`, `1h`, `1d`."""
    raw = string(name) or default
    seconds = parse_duration(raw)
    expected = DURATION_HELP
    if seconds is None:
        raise _fail(name, raw, expected)
    if seconds < minimum:
        raise _fail(name, raw, f"{expected}, at least {minimum:g}s")
    return seconds


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """Return the variable lower-cased, which must be one of `choices`."""
    raw = string(name) or default
    if raw.lower() not in choices:
        raise _fail(name, raw, "one of " + ", ".join(choices))
    return raw.lower()


def string_list(name: str, default: list[str] | None = None) -> list[str]:
    """Return a comma-separated variable as a list of non-empty stripped items."""
    raw = string(name)
    if not raw:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def hex_key(name: str) -> bytes | None:
    """Return a 64-hex-character (32-byte) key as bytes, or None when unset."""
    raw = string(name)
    if not raw:
        return None
    if not _HEX_KEY.match(raw):
        raise _fail(
            name,
            f"<{len(raw)} characters>",
            "64 hexadecimal characters (32 bytes), e.g. the output of `openssl rand -hex 32`",
        )
    return bytes.fromhex(raw)


def hex_key_list(name: str) -> list[bytes]:
    """Return a comma-separated list of 64-hex-character keys."""
    keys = []
    for position, item in enumerate(string_list(name), start=1):
        if not _HEX_KEY.match(item):
            raise _fail(
                name,
                f"<item {position}: {len(item)} characters>",
                "a comma-separated list of 64-hexadecimal-character keys",
            )
        keys.append(bytes.fromhex(item))
    return keys


def url(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    """Return a URL whose scheme is one of `schemes`."""
    raw = string(name) or default
    if not raw:
        return ""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise _fail(name, redact_url(raw), "a URL such as " + _example(schemes)) from None
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise _fail(name, redact_url(raw), "a URL with scheme " + " or ".join(f"{s}://" for s in schemes))
    return raw


def database_url(name: str, default: str) -> dict:
    """Return a Django DATABASES entry parsed from a database URL."""
    raw = string(name) or default
    try:
        config = environ.Env.db_url_config(raw)
    except Exception:  # django-environ raises several types for a malformed URL
        raise _fail(
            name, redact_url(raw), "a database URL such as postgres://user@host:5432/name or sqlite:///path"
        ) from None
    if not config.get("ENGINE"):
        raise _fail(name, redact_url(raw), "a postgres://, postgresql:// or sqlite:/// URL")
    return config


def email_url(name: str) -> dict | None:
    """Return Django's EMAIL_* settings parsed from an email URL, or None when unset."""
    raw = string(name)
    if not raw:
        return None
    try:
        parsed = environ.Env.email_url_config(raw)
    except (ImproperlyConfigured, KeyError, ValueError) as exc:
        expected = "an email URL such as smtp+tls://user:password@smtp.example.com:587 or consolemail://"
        raise _fail(name, redact_url(raw), expected) from exc
    return {key: value for key, value in parsed.items() if key.startswith("EMAIL_") and value not in (None, "")}


def redact_url(raw: str) -> str:
    """Hide the password part of a URL so configuration errors never leak it."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", raw)


def _example(schemes: tuple[str, ...]) -> str:
    return f"{schemes[0]}://host:6379/0"


def _bounds_text(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" between {minimum} and {maximum}"
    if minimum is not None:
        return f" of at least {minimum}"
    if maximum is not None:
        return f" of at most {maximum}"
    return ""


def file_path(name: str) -> str:
    """Return the path of an existing, readable file, or "" when unset."""
    raw = string(name)
    if not raw:
        return ""
    path = Path(raw).expanduser()
    if not path.is_file():
        raise _fail(name, raw, "the path of an existing file (absolute, or relative to the working directory)")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise _fail(name, raw, f"a readable file ({exc.strerror})") from None
    return str(path.resolve())


def host_port_list(name: str, *, default_port: int) -> list[tuple[str, int]]:
    """Return a comma-separated `host:port` list as (host, port) pairs; a bare host gets `default_port`."""
    pairs = []
    for item in string_list(name):
        host, sep, port_text = item.rpartition(":")
        if not sep:
            host, port_text = item, str(default_port)
        host = host.strip("[]")
        expected = f"a comma-separated list of host:port, e.g. sentinel-1:{default_port},sentinel-2:{default_port}"
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _fail(name, item, expected)
        pairs.append((host, int(port_text)))
    return pairs


def trusted_proxies(name: str, default: str = "0") -> int | list[str]:
    """Return a proxy count (`2`) or a list of CIDRs (`10.0.0.0/8,192.168.1.5`) trusted to set X-Forwarded-For."""
    import ipaddress

    raw = string(name) or default
    if raw.isdigit():
        count = int(raw)
        if count > 10:
            raise _fail(name, raw, "a number of proxies between 0 and 10, or a comma-separated list of CIDRs")
        return count
    networks = []
    for item in string_list(name):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise _fail(
                name, raw, "a number of proxies (e.g. 1) or a comma-separated list of CIDRs (e.g. 10.0.0.0/8)"
            ) from None
    return networks


def rate(name: str, default: str) -> str:
    """Return a rate such as `5/m`, `20/5m` or `100/h` (count per [multiplier] unit)."""
    raw = string(name) or default
    if not re.match(r"^\d+/\d*[smhd]$", raw):
        raise _fail(name, raw, "a rate such as 5/m, 20/5m, 100/h (count/[multiplier]unit, unit one of s, m, h, d)")
    if int(raw.split("/", 1)[0]) < 1:
        raise _fail(name, raw, "a rate with a count of at least 1")
    return raw


_BREAKER_OPTION = {"fail_max": "count", "success_threshold": "count", "reset_timeout": "duration"}


def breaker_overrides(name: str) -> dict[str, dict]:
    """Return per-breaker settings from `redis:fail_max=3,reset_timeout=5s;upstream.*:fail_max=2`."""
    raw = string(name)
    expected = (
        "entries `<breaker name or glob>:<option>=<value>,...` separated by `;`, options fail_max, "
        "success_threshold (whole numbers >= 1) and reset_timeout (a duration such as 30s)"
    )
    overrides: dict[str, dict] = {}
    for entry in filter(None, (part.strip() for part in raw.split(";"))):
        breaker, _, options = entry.partition(":")
        if not breaker.strip() or not options.strip():
            raise _fail(name, raw, expected)
        values = overrides.setdefault(breaker.strip(), {})
        for option in options.split(","):
            option_name, _, value = option.partition("=")
            option_name, value = option_name.strip(), value.strip()
            kind = _BREAKER_OPTION.get(option_name)
            if kind == "count" and value.isdigit() and int(value) >= 1:
                values[option_name] = int(value)
            elif kind == "duration" and parse_duration(value) is not None:
                values[option_name] = parse_duration(value)
            else:
                raise _fail(name, raw, expected)
    return overrides


def cidr_list(name: str) -> list:
    """Return a list of networks from comma-separated CIDRs or addresses (`10.0.0.0/8,127.0.0.1`)."""
    import ipaddress

    networks = []
    for item in string_list(name):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise _fail(
                name, string(name), "a comma-separated list of CIDRs or addresses, e.g. 10.0.0.0/8,127.0.0.1"
            ) from None
    return networks
