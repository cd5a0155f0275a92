"""Container health probe: exit 0 when GET /readyz answers 200, else 1.

Run as `python -m agentapi_admin.healthcheck` by the Dockerfile's HEALTHCHECK and
the compose file. With `--heartbeat FILE --max-age SECONDS` it checks instead that a
loop without a port (run_maintenance's `--heartbeat-file`) touched FILE recently.
It imports nothing from Django (a probe must be cheap) and sends a Host header from
ALLOWED_HOSTS, because Django answers 400 to a Host it does not serve and the probe
connects to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import time

EX_USAGE = 64


def probe_host(allowed_hosts: str) -> str:
    """Return a Host header value that ALLOWED_HOSTS accepts."""
    for entry in (item.strip() for item in allowed_hosts.split(",")):
        if not entry:
            continue
        if entry == "*":
            return "localhost"
        # ".example.com" allows every subdomain of example.com.
        return f"healthcheck{entry}" if entry.startswith(".") else entry
    return "localhost"


def heartbeat_age(path: str) -> float | None:
    """Return the seconds since `path` was last touched, or None if it does not exist."""
    try:
        return max(0.0, time.time() - os.stat(path).st_mtime)
    except FileNotFoundError:
        return None


def check_heartbeat(path: str, max_age: float) -> int:
    age = heartbeat_age(path)
    if age is None:
        sys.stderr.write(f"no heartbeat at {path}: the loop has not completed a round yet, or is not running\n")
        return 1
    if age > max_age:
        sys.stderr.write(f"{path}: last beat {age:.0f}s ago (max {max_age:g}s): the loop is stuck or gone\n")
        return 1
    return 0


def _positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, e.g. --max-age 600, not {raw!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Probe /readyz on this container's port (or a heartbeat file); return the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m agentapi_admin.healthcheck", description=__doc__)
    parser.add_argument("--heartbeat", metavar="FILE", help="Check FILE's age instead of /readyz.")
    parser.add_argument("--max-age", type=_positive_seconds, default=600.0, help="Seconds (default 600).")
    # A usage error is 64, never argparse's 2 (argparse's only hook for that is replacing error()).
    parser.error = lambda message: parser.exit(EX_USAGE, f"{parser.prog}: error: {message}\n")  # type: ignore[method-assign]
    options = parser.parse_args(argv)
    if options.heartbeat:
        return check_heartbeat(options.heartbeat, options.max_age)
    return probe_readyz()


def probe_readyz() -> int:
    port = int(os.environ.get("PORT", "8000"))
    timeout = float(os.environ.get("HEALTHCHECK_TIMEOUT", "4"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/readyz", headers={"Host": probe_host(os.environ.get("ALLOWED_HOSTS", ""))})
        response = connection.getresponse()
        body = response.read(2000).decode(errors="replace")
    except OSError as exc:
        sys.stderr.write(f"readyz unreachable on 127.0.0.1:{port}: {exc}\n")
        return 1
    finally:
        connection.close()
    if response.status != 200:
        sys.stderr.write(f"readyz answered {response.status}: {body}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
