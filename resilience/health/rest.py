"""A minimal client for Upstash's Redis REST API (https://upstash.com/docs/redis/features/restapi).

Commands are POSTed as a JSON array (`["INFO"]`) to the base URL with
`Authorization: Bearer <token>`; the answer is `{"result": ...}` or `{"error": "..."}`.
Only what the health probe needs: no retries, no connection reuse.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request


class RestError(Exception):
    """Upstash answered a command with `{"error": ...}` (e.g. a command the provider hides)."""


class RestUnavailable(ConnectionError):
    """The REST endpoint could not be reached or answered something that is not the REST format."""


class UpstashRestClient:
    """Send Redis commands to an Upstash REST endpoint."""

    def __init__(self, url: str, token: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def execute(self, *args: object):
        """Run one command and return its `result`."""
        body = self._post(self.url, [str(arg) for arg in args])
        return self._result(body)

    def pipeline(self, commands: list[list[object]]) -> list:
        """Run commands in one request (`/pipeline`); return results, a RestError instance for each failure."""
        body = self._post(self.url + "/pipeline", [[str(arg) for arg in command] for command in commands])
        if not isinstance(body, list):
            raise RestUnavailable(f"unexpected pipeline answer: {str(body)[:200]}")
        results = []
        for item in body:
            try:
                results.append(self._result(item))
            except RestError as exc:
                results.append(exc)
        return results

    def _post(self, url: str, payload: list):
        request = urllib.request.Request(  # noqa: S310 - the URL is an https/http setting validated at start-up
            url,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            # Upstash reports command errors with 4xx + {"error": ...}; keep that message.
            raw = exc.read()
            try:
                body = json.loads(raw)
            except ValueError:
                raise RestUnavailable(f"HTTP {exc.code} from the REST API") from None
            if isinstance(body, dict) and "error" in body:
                if exc.code in (401, 403):
                    raise RestUnavailable(
                        f"HTTP {exc.code}: {body['error']} (check UPSTASH_REDIS_REST_TOKEN)"
                    ) from None
                return body
            raise RestUnavailable(f"HTTP {exc.code} from the REST API") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RestUnavailable(f"REST API unreachable: {reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise RestUnavailable("the REST API answered something that is not JSON") from None

    @staticmethod
    def _result(body):
        if isinstance(body, dict) and "error" in body:
            raise RestError(str(body["error"]))
        if isinstance(body, dict) and "result" in body:
            return body["result"]
        raise RestUnavailable(f"unexpected REST answer: {str(body)[:200]}")
