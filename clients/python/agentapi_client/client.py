"""A tenant's view of the control plane: the bootstrap document, kept current, evaluated locally."""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import httpx

from agentapi_client.evaluation import Evaluation, evaluate

log = logging.getLogger("agentapi_client")

#: Client states. `stale` serves the last known good document; `revoked` and `suspended` are final for the key.
NOT_READY, READY, STALE, REVOKED, SUSPENDED = "not_ready", "ready", "stale", "revoked", "suspended"


class ControlPlaneError(Exception):
    """The control plane refused the key or could not be reached before any document was known."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


class ControlPlane:
    """Fetch `GET /api/v1/bootstrap`, keep it current, and answer flags locally.

    With `stream_url` (the control plane's `/api/v1/stream`), changes arrive as Server-Sent
    Events within a second and polling pauses while the stream is connected; without it, or
    while the stream is down, conditional polling every `poll_interval` seconds keeps the
    document current. Thread-safe. When the control plane is unreachable, the last known good
    document keeps being served (`status == "stale"`) and polling backs off up to `max_backoff`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        poll_interval: float = 30.0,
        timeout: float = 5.0,
        max_backoff: float = 300.0,
        stream_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "agentapi-client-python/0.2"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        self._lock = threading.Lock()
        self._document: dict | None = None
        self._etag: str | None = None
        self._listeners: list[Callable[[list[str]], None]] = []
        self._status_listeners: list[Callable[[str], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream_url = stream_url
        self._stream_thread: threading.Thread | None = None
        self._last_event_id: str | None = None
        #: True while the change stream is connected (polling pauses).
        self.streaming = False
        self.status = NOT_READY
        self.last_error: str = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ControlPlane:
        """Fetch the document once (raising ControlPlaneError if that fails) and start polling in the background."""
        self.refresh()
        if self._document is None:
            raise ControlPlaneError(self.last_error or "no document", status=self.status)
        if self.poll_interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="agentapi-client-poll", daemon=True)
            self._thread.start()
        if self._stream_url and self._stream_thread is None:
            self._stream_thread = threading.Thread(
                target=self._listen, args=(self._stream_url,), name="agentapi-client-stream", daemon=True
            )
            self._stream_thread.start()
        return self

    def stop(self) -> None:
        """Stop polling and close the HTTP connection pool."""
        self._stop.set()
        for thread in (self._thread, self._stream_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)
        self._http.close()

    def on_change(self, callback: Callable[[list[str]], None]) -> None:
        """Call `callback(changed_flag_keys)` after a new document replaces the old one."""
        self._listeners.append(callback)

    def on_status(self, callback: Callable[[str], None]) -> None:
        """Call `callback(status)` when the client's status changes."""
        self._status_listeners.append(callback)

    # ------------------------------------------------------------------ reads
    @property
    def document(self) -> dict | None:
        """Return the last known good bootstrap document (None before the first success)."""
        return self._document

    @property
    def tenant(self) -> dict:
        return self._require()["tenant"]

    @property
    def settings(self) -> dict:
        return self._require()["settings"]

    @property
    def environment(self) -> str:
        """Return the environment the API key reads (`production` unless the key was issued for another)."""
        return self._require().get("environment", "production")

    @property
    def limits(self) -> dict:
        return self._require()["limits"]

    def flag(self, key: str, subject: str | None = None, context: dict | None = None) -> Evaluation | None:
        """Evaluate flag `key` locally for `subject` (None: the tenant) and `context`; None if there is no such flag."""
        document = self._require()
        entry = document["flags"].get(key)
        if entry is None:
            return None
        return evaluate(key, entry, self._subject(document, subject, context), context)

    def evaluate(
        self,
        subject: str | None = None,
        context: dict | None = None,
        keys: list[str] | None = None,
        *,
        remote: bool = False,
    ) -> dict[str, Evaluation]:
        """Evaluate flags (every flag, or `keys`) for `subject` and `context`; unknown keys are left out.

        Locally from the bootstrap document by default; `remote=True` asks `POST /api/v1/evaluate`
        instead (one request, no document needed; raises ControlPlaneError if it fails).
        """
        if remote:
            return self._evaluate_remote(subject, context, keys)
        document = self._require()
        flags = document["flags"]
        subject = self._subject(document, subject, context)
        wanted = sorted(flags) if keys is None else [k for k in dict.fromkeys(keys) if k in flags]
        return {key: evaluate(key, flags[key], subject, context) for key in wanted}

    def _evaluate_remote(self, subject: str | None, context: dict | None, keys: list[str] | None) -> dict:
        body: dict = {"context": context or {}}
        if subject is not None:
            body["subject"] = subject
        if keys is not None:
            body["keys"] = list(keys)
        try:
            response = self._http.post("/api/v1/evaluate", json=body)
        except httpx.HTTPError as exc:
            raise ControlPlaneError(f"control plane unreachable: {exc}", status=self.status) from exc
        if response.status_code != 200:
            raise ControlPlaneError(
                f"POST /api/v1/evaluate answered HTTP {response.status_code} ({_error_code(response)})",
                status=self.status,
            )
        return {
            key: Evaluation(
                key,
                answer["enabled"],
                answer["reason"],
                int(answer["version"]),
                answer.get("value"),
                answer.get("variant"),
                answer.get("rule"),
            )
            for key, answer in response.json()["flags"].items()
        }

    def is_enabled(
        self, key: str, subject: str | None = None, *, default: bool = False, context: dict | None = None
    ) -> bool:
        """Return whether the flag is on, or `default` for an unknown flag or before any document is known."""
        if self._document is None:
            return default
        result = self.flag(key, subject, context)
        return default if result is None else result.enabled

    def get_value(self, key: str, default: Any, subject: str | None = None, context: dict | None = None) -> Any:
        """Return the flag's value, or `default` if it is off, unknown, or no document is known yet."""
        if self._document is None:
            return default
        result = self.flag(key, subject, context)
        return default if result is None or not result.enabled or result.value is None else result.value

    def get_string(self, key: str, default: str, subject: str | None = None, context: dict | None = None) -> str:
        """Return a string flag's value; `default` if it is off, unknown, or not a string flag."""
        value = self.get_value(key, default, subject, context)
        return value if isinstance(value, str) else default

    def get_number(
        self, key: str, default: float, subject: str | None = None, context: dict | None = None
    ) -> int | float:
        """Return a number flag's value; `default` if it is off, unknown, or not a number flag."""
        value = self.get_value(key, default, subject, context)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else default

    def get_json(self, key: str, default: Any, subject: str | None = None, context: dict | None = None) -> Any:
        """Return a JSON flag's value (any JSON); `default` if it is off or unknown."""
        return self.get_value(key, default, subject, context)

    def get_variant(
        self, key: str, subject: str | None = None, context: dict | None = None, *, default: str | None = None
    ) -> str | None:
        """Return the variant the subject is served (e.g. its arm of an experiment), or `default`."""
        if self._document is None:
            return default
        result = self.flag(key, subject, context)
        return default if result is None or result.variant is None else result.variant

    @staticmethod
    def _subject(document: dict, subject: str | None, context: dict | None) -> str | None:
        # The bootstrap's own answers are the tenant's: without a subject or context they are used as they are.
        if subject is None and context:
            return str(document["tenant"]["id"])
        return subject

    def _require(self) -> dict:
        document = self._document
        if document is None:
            raise ControlPlaneError("no bootstrap document yet: call start()", status=self.status)
        return document

    # ------------------------------------------------------------------ polling
    def refresh(self) -> bool:
        """Ask for the document once (If-None-Match); return True if a new document replaced the old one."""
        headers = {"If-None-Match": self._etag} if self._etag else {}
        try:
            response = self._http.get("/api/v1/bootstrap", headers=headers)
        except httpx.HTTPError as exc:
            self._fail(STALE if self._document is not None else NOT_READY, f"control plane unreachable: {exc}")
            return False
        if response.status_code == 304:
            self._set_status(READY)
            return False
        if response.status_code == 200:
            return self._replace(response.json(), response.headers.get("ETag"))
        error = _error_code(response)
        if response.status_code == 401:
            self._fail(REVOKED, f"the API key was refused ({error})")
        elif response.status_code == 403 and error in {"tenant_suspended", "tenant_deleted"}:
            self._fail(SUSPENDED, f"the tenant is not served ({error})")
        else:
            self._fail(STALE if self._document is not None else NOT_READY, f"HTTP {response.status_code} ({error})")
        return False

    def _replace(self, document: dict, etag: str | None) -> bool:
        with self._lock:
            old = self._document
            self._document, self._etag = document, etag
        self._set_status(READY)
        changed = _changed_flags(old, document) if old is not None else sorted(document.get("flags", {}))
        if old is not None and changed:
            for callback in list(self._listeners):
                try:
                    callback(changed)
                except Exception:  # a listener's bug must not stop updates
                    log.exception("agentapi_client: change listener failed")
        return old is None or old != document

    def _fail(self, status: str, message: str) -> None:
        self.last_error = message
        log.warning("agentapi_client: %s", message)
        self._set_status(status)

    def _set_status(self, status: str) -> None:
        if status == self.status:
            return
        self.status = status
        for callback in list(self._status_listeners):
            try:
                callback(status)
            except Exception:
                log.exception("agentapi_client: status listener failed")

    def _poll(self) -> None:
        delay = self.poll_interval
        while not self._stop.wait(delay * random.uniform(0.9, 1.1)):  # noqa: S311 - jitter, not security
            if self.streaming:
                continue  # the stream brings changes as they happen
            self.refresh()
            if self.status == REVOKED:
                return  # a revoked key never comes back
            if self.status in (READY, SUSPENDED):
                delay = self.poll_interval
            else:
                delay = min(max(delay * 2, self.poll_interval), self.max_backoff)

    # ------------------------------------------------------------------ streaming
    def _listen(self, url: str) -> None:
        """Hold the change stream open, refreshing on each event; reconnect with backoff when it drops."""
        delay = 1.0
        while not self._stop.is_set() and self.status != REVOKED:
            ended = self._stream_once(url)
            if ended == REVOKED:
                return
            delay = 1.0 if ended == "reconnect" else min(delay * 2, self.max_backoff)
            self._stop.wait(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not security

    def _stream_once(self, url: str) -> str:
        """Read one stream connection to its end; return why it ended: revoked, reconnect or backoff."""
        headers = {"Accept": "text/event-stream"}
        if self._last_event_id:
            headers["Last-Event-ID"] = self._last_event_id
        try:
            with self._http.stream(
                "GET", url, headers=headers, timeout=httpx.Timeout(self._http.timeout.connect, read=60)
            ) as response:
                if response.status_code == 401:
                    response.read()
                    self._fail(REVOKED, f"the API key was refused by the stream ({_error_code(response)})")
                    return REVOKED
                if response.status_code != 200:
                    return "backoff"
                return self._read_events(response)
        except httpx.HTTPError:
            return "backoff"
        finally:
            self.streaming = False

    def _read_events(self, response: httpx.Response) -> str:
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if self._stop.is_set():
                return "backoff"
            if line:
                if not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                continue
            event, fields = fields, {}
            kind = event.get("event")
            if kind == "ready":
                self.streaming = True
                data = json.loads(event.get("data") or "{}")
                if data.get("etag") != self._etag:
                    self.refresh()  # something changed while no stream was connected
            elif kind == "change":
                self._last_event_id = event.get("id") or self._last_event_id
                self.refresh()
            elif name == "revoked":
                self._fail(REVOKED, "the API key was revoked (change stream)")
                return REVOKED
            elif name in ("suspended", "unavailable"):
                self.refresh()  # records the suspension; or notes that the control plane is degraded
                return "backoff"
        return "reconnect"


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", "")) or "unknown"
    except ValueError:
        return "unknown"


def _changed_flags(old: dict, new: dict) -> list[str]:
    before, after = old.get("flags", {}), new.get("flags", {})
    return sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
