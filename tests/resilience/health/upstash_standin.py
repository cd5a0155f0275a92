"""A local HTTP stand-in for Upstash's Redis REST API, backed by a real redis-server.

Follows the documented format (https://upstash.com/docs/redis/features/restapi):
POST a JSON command array to the base URL, or `/<command>/<arg>/...` path style,
or a list of arrays to `/pipeline`; `Authorization: Bearer <token>`; answers
`{"result": ...}` or `{"error": "..."}` (400), 401 for a bad token. Like Upstash it
refuses some admin commands (CONFIG, SLOWLOG, CLIENT), which the health page
must then show as "n/a".
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import redis

HIDDEN = {"CONFIG", "SLOWLOG", "CLIENT", "DEBUG", "MONITOR"}


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return [_jsonable(x) for pair in value.items() for x in pair]
    return value


class UpstashStandIn:
    """Serve the REST API on 127.0.0.1:<free port> in a thread."""

    def __init__(self, redis_port: int, token: str) -> None:
        self.token = token
        self.redis_port = redis_port
        self.requests: list[list] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _answer(self, status: int, body) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {standin.token}":
                    return self._answer(401, {"error": "Unauthorized"})
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length)) if length else None
                path = self.path.split("?", 1)[0].strip("/")
                if path == "pipeline":
                    return self._answer(200, [standin.run(cmd) for cmd in payload])
                command = [unquote(part) for part in path.split("/") if part] if path else []
                if isinstance(payload, list):
                    command += payload
                result = standin.run(command)
                return self._answer(400 if "error" in result else 200, result)

            do_POST = _handle
            do_GET = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def run(self, command: list) -> dict:
        self.requests.append(list(command))
        if not command:
            return {"error": "ERR empty command"}
        if str(command[0]).upper() in HIDDEN:
            return {"error": f"ERR Command is not available: '{str(command[0]).lower()}'"}
        client = redis.Redis(port=self.redis_port, protocol=2)
        try:
            # A raw connection: the reply as Redis sent it, not parsed by redis-py's callbacks.
            connection = client.connection_pool.get_connection()
            try:
                connection.send_command(*command)
                return {"result": _jsonable(connection.read_response())}
            finally:
                client.connection_pool.release(connection)
        except redis.ResponseError as exc:
            return {"error": str(exc)}
        except redis.ConnectionError as exc:
            return {"error": f"ERR {exc}"}
        finally:
            client.close()

    def __enter__(self) -> UpstashStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
