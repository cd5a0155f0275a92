"""A keep-alive HTTP client for the soak and the fault-injection suite: manual cookies, one sign-in helper."""

from __future__ import annotations

import http.client
from urllib.parse import urlencode


class Client:
    """A keep-alive HTTP client that behaves like a browser behind a TLS proxy (manual cookies)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}
        self.retries = 0  # requests re-sent after a dropped connection (the server may have handled the first)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        headers = {"Host": "127.0.0.1", "X-Forwarded-Proto": "https", **(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                self.retries += 1
                continue
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    cookie = value.split(";", 1)[0]
                    key, _, val = cookie.partition("=")
                    self.cookies[key.strip()] = val.strip()
            return response.status, dict(response.getheaders()), data
        raise RuntimeError("unreachable")

    def sign_in(self, path: str, username: str, password: str) -> int:
        """GET the sign-in form for its CSRF cookie, POST the credentials; return the POST's status (302 = in)."""
        self.cookies.clear()
        self.request("GET", path)
        form = urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")}
        ).encode()
        status, _, _ = self.request(
            "POST",
            path,
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Referer": f"https://127.0.0.1{path}"},
        )
        return status
