"""Container health probe: exit 0 when GET /readyz answers 200, else 1.

Run as `python -m agentapi_admin.healthcheck` by the Dockerfile's HEALTHCHECK and
the compose file. It imports nothing from Django (a probe must be cheap) and
sends a Host header from ALLOWED_HOSTS, because Django answers 400 to a Host it
does not serve and the probe connects to 127.0.0.1.
"""

from __future__ import annotations

import http.client
import os
import sys


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


def main() -> int:
    """Probe /readyz on this container's port; return the process exit code."""
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
