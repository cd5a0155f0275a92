"""Soak test: gunicorn under load from several client processes while Redis and a worker fail.

    .venv/bin/python bench/soak/run.py --duration 90 --report docs/soak-latest.md

What it does, all on 127.0.0.1 and bounded in time:
1. starts its own redis-server (AOF, fsync always, so a SIGKILL loses nothing that was
   acknowledged) and uses PostgreSQL (DATABASE_URL, default the local `agentapi_soak`
   database, created if missing) or SQLite;
2. migrates, runs `seed_demo --json` for the API keys and demo logins;
3. serves the app with gunicorn (gthread) in production mode (DEBUG=false);
4. drives the service API (`GET /api/v1/bootstrap`, both tenants) and the portal (logged-in
   page views) from several client processes;
5. kills Redis (SIGKILL) and restarts it, twice, then SIGKILLs one gunicorn worker;
6. reports requests served, errors by status, p50/p99 latency before/during/after each
   fault, and checks nothing was lost: audit rows and flags unchanged, and usage counted in
   Redis and flushed to the database matching the API requests served.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))

from agentapi_admin.redis_process import RedisProcess, free_port  # noqa: E402

PYTHON = sys.executable


# ----------------------------------------------------------------------------- clients
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


def api_client(port: int, keys: list[str], deadline: float, out: str) -> None:
    client = Client(port)
    with open(out, "w") as sink:
        i = 0
        while time.time() < deadline:
            key = keys[i % len(keys)]
            i += 1
            started = time.time()
            kind = "api"
            try:
                status, headers, _ = client.request(
                    "GET", "/api/v1/bootstrap", headers={"Authorization": f"Bearer {key}"}
                )
                # Served from the database while Redis was unreachable (fail-open): no limiter headers.
                if status == 200 and "RateLimit-Limit" not in headers:
                    kind = "api-noredis"
            except Exception:
                status = 0
            sink.write(f"{started:.4f} {kind} {status} {(time.time() - started) * 1000:.2f}\n")
        sink.write(f"{time.time():.4f} api-retries {client.retries} 0\n")


def portal_client(port: int, username: str, password: str, slug: str, deadline: float, out: str) -> None:
    client = Client(port)
    with open(out, "w") as sink:
        logged_in = False
        while time.time() < deadline:
            started = time.time()
            try:
                if not logged_in:
                    status = client.sign_in("/portal/login/", username, password)
                    logged_in = status == 302
                    kind = "login"
                else:
                    status, headers, _ = client.request("GET", f"/portal/t/{slug}/")
                    kind = "portal"
                    if status == 302 and "/login" in headers.get("Location", ""):
                        logged_in = False  # session lost: log in again, and count it
                        kind = "portal-relogin"
            except Exception:
                status, kind = 0, "portal"
            sink.write(f"{started:.4f} {kind} {status} {(time.time() - started) * 1000:.2f}\n")
            time.sleep(0.02)


# ------------------------------------------------------------------------- orchestration
@dataclass
class Fault:
    name: str
    start: float
    end: float


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [PYTHON, str(BASE_DIR / "manage.py"), *args], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def ensure_database(url: str) -> None:
    if not url.startswith("postgres"):
        return
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = url.replace(parts.path, "/postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def wait_http(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz", headers={"Host": "127.0.0.1"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def phases(faults: list[Fault], start: float, end: float) -> list[tuple[str, float, float]]:
    """Split the run into before / during / after windows around each fault."""
    windows = []
    cursor = start
    for fault in faults:
        windows.append(
            (f"before {fault.name}" if cursor == start else f"after previous, before {fault.name}", cursor, fault.start)
        )
        windows.append((f"during {fault.name}", fault.start, fault.end))
        cursor = fault.end
    windows.append(("after last fault", cursor, end))
    return windows


def snapshot(env: dict) -> dict:
    code = (
        "import json, django; django.setup();"
        "from tenants.models import AuditEvent, TenantFlag, UsageDaily;"
        "from django.db.models import Sum;"
        "print(json.dumps({'audit': AuditEvent.objects.count(),"
        "'logins': AuditEvent.objects.filter(action='auth.login').count(),"
        "'overrides': sorted([f'{o.tenant.slug}:{o.flag.key}:{o.enabled}:{o.rollout_percent}' for o in TenantFlag.objects.select_related('tenant','flag')]),"
        "'usage': UsageDaily.objects.filter(metric='requests').aggregate(total=Sum('count'))['total'] or 0}))"
    )
    out = subprocess.run([PYTHON, "-c", code], env=env, cwd=BASE_DIR, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=90, help="seconds of load (default 90, max 600)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--api-clients", type=int, default=4)
    parser.add_argument("--portal-clients", type=int, default=2)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/agentapi_soak")
    )
    parser.add_argument("--fail-mode", choices=["open", "closed"], default="open")
    parser.add_argument(
        "--redis-reset-timeout",
        default="5s",
        help="CIRCUIT_BREAKER_OVERRIDES reset_timeout of the in-process Redis breaker (default 5s; the app's "
        "default, CIRCUIT_BREAKER_TIMEOUT=30s, keeps each worker off a restarted Redis for up to 30 s)",
    )
    parser.add_argument("--report", type=Path, help="also write the Markdown report here")
    args = parser.parse_args()
    duration = min(max(args.duration, 20), 600)

    workdir = Path(tempfile.mkdtemp(prefix="agentapi-soak-"))
    redis_server = RedisProcess(
        directory=workdir / "redis", extra_args=["--appendonly", "yes", "--appendfsync", "always"]
    )
    redis_server.start()
    ensure_database(args.database_url)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "READ_ENV_FILE": "false",
        "DJANGO_SETTINGS_MODULE": "agentapi_admin.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TOKEN_ENCRYPTION_KEY": secrets.token_hex(32),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": redis_server.url,
        "REDIS_CONNECTION_TIMEOUT": "1s",
        "RATE_LIMIT_FAIL_MODE": args.fail_mode,
        # Generous limits: the soak measures faults, not throttling.
        "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000",
        "RATE_LIMIT_BURST_SIZE": "100000",
        "CIRCUIT_BREAKER_OVERRIDES": f"redis:reset_timeout={args.redis_reset_timeout}",
        "SECURE_PROXY_SSL_HEADER": "true",
        "SECURE_HSTS_SECONDS": "0",
        "LOG_LEVEL": "warning",
    }
    gunicorn = None
    try:
        manage(env, "migrate", "--noinput")
        # Start from a clean slate: stale usage rows from an earlier soak would skew the check.
        manage(env, "shell", "-c", "from tenants.models import UsageDaily; UsageDaily.objects.all().delete()")
        seed = json.loads(manage(env, "seed_demo", "--json").strip().splitlines()[-1])
        keys = list(seed["api_keys"].values())
        password = os.environ.get("DEMO_PASSWORD", "demo-pass-123")
        manage(env, "collectstatic", "--noinput", "-v", "0")
        before = snapshot(env)

        gunicorn = subprocess.Popen(
            [
                str(Path(PYTHON).parent / "gunicorn"),
                "agentapi_admin.wsgi:application",
                "-k",
                "gthread",
                "-w",
                str(args.workers),
                "--threads",
                str(args.threads),
                "-b",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=(workdir / "gunicorn.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        wait_http(port)

        start = time.time()
        deadline = start + duration
        outputs = []
        procs = []
        for i in range(args.api_clients):
            out = str(workdir / f"api-{i}.log")
            outputs.append(out)
            procs.append(mp.Process(target=api_client, args=(port, keys, deadline, out)))
        owners = [("acme-owner", "acme"), ("globex-owner", "globex")]
        for i in range(args.portal_clients):
            out = str(workdir / f"portal-{i}.log")
            outputs.append(out)
            owner, slug = owners[i % 2]
            procs.append(mp.Process(target=portal_client, args=(port, owner, password, slug, deadline, out)))
        for proc in procs:
            proc.start()

        faults: list[Fault] = []

        def at(fraction: float) -> None:
            time.sleep(max(0.0, start + duration * fraction - time.time()))

        for n, (down, up) in enumerate([(0.2, 0.3), (0.45, 0.55)], start=1):
            at(down)
            t0 = time.time()
            redis_server.kill()
            at(up)
            redis_server.start()
            faults.append(Fault(f"Redis kill #{n}", t0, time.time() + 2))
        at(0.75)
        t0 = time.time()
        victim = worker_pids(gunicorn.pid)[0]
        os.kill(victim, signal.SIGKILL)
        faults.append(Fault("worker SIGKILL", t0, t0 + 3))

        for proc in procs:
            proc.join(timeout=duration + 60)
        end = time.time()

        records, api_retries = [], 0
        for out in outputs:
            for line in Path(out).read_text().splitlines():
                ts, kind, status, ms = line.split()
                if kind == "api-retries":
                    api_retries += int(status)
                    continue
                records.append((float(ts), kind, int(status), float(ms)))

        manage(env, "flush_usage")
        after = snapshot(env)
    finally:
        if gunicorn is not None:
            gunicorn.send_signal(signal.SIGTERM)
            try:
                gunicorn.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
        redis_server.stop()

    report, ok = render(records, faults, start, end, before, after, args, duration, api_retries)
    print(report)
    if args.report:
        args.report.write_text(report)
    return 0 if ok else 1


def render(records, faults, start, end, before, after, args, duration, api_retries) -> tuple[str, bool]:
    """Return the Markdown report and whether every "nothing lost" check passed."""
    by_status: dict[str, int] = {}
    for _, kind, status, _ in records:
        label = f"{kind} {status if status else 'transport error'}"
        by_status[label] = by_status.get(label, 0) + 1
    counted_served = sum(1 for _, kind, status, _ in records if kind == "api" and status in (200, 304))
    uncounted_served = sum(1 for _, kind, status, _ in records if kind == "api-noredis")
    transport_errors = sum(1 for r in records if r[2] == 0)
    api_transport_errors = sum(1 for r in records if r[2] == 0 and r[1].startswith("api"))
    logins_ok = sum(1 for _, kind, status, _ in records if kind == "login" and status == 302)
    logins_503 = sum(1 for _, kind, status, _ in records if kind == "login" and status == 503)
    five_xx = sum(1 for r in records if r[2] >= 500 and r[2] != 503)
    lines = [
        "# Soak run",
        "",
        f"`{' '.join(sys.argv)}` — {duration:.0f}s, gunicorn gthread {args.workers}x{args.threads}, "
        f"{args.api_clients} API + {args.portal_clients} portal client processes, RATE_LIMIT_FAIL_MODE={args.fail_mode}, "
        f"Redis breaker reset timeout {args.redis_reset_timeout}.",
        "",
        f"Requests: {len(records)} ({len(records) / max(end - start, 1):.0f}/s).",
        "",
        "`api` = bootstrap answered through Redis (limited and counted); `api-noredis` = answered from the "
        "database while Redis was unreachable (fail-open: no RateLimit headers, not counted); `portal` = a "
        "signed-in tenant page; `login` = GET + POST of the portal sign-in form (password hashing dominates).",
        "",
        "| outcome | count |",
        "|---|---|",
        *[f"| {label} | {count} |" for label, count in sorted(by_status.items())],
        "",
        "| window | API requests | API p50 ms | API p99 ms | API not 200 | portal pages | portal p50 ms | "
        "portal p99 ms | sign-ins | sign-in p50 ms | portal/sign-in 5xx or transport errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, lo, hi in phases(faults, start, end):
        window = [r for r in records if lo <= r[0] < hi]
        api = [r for r in window if r[1].startswith("api")]
        pages = [r for r in window if r[1].startswith("portal")]
        logins = [r for r in window if r[1] == "login"]
        api_ms = [r[3] for r in api]
        page_ms = [r[3] for r in pages]
        api_bad = sum(1 for r in api if r[2] not in (200, 304))
        portal_bad = sum(1 for r in pages + logins if r[2] == 0 or r[2] >= 500)
        lines.append(
            f"| {name} ({lo - start:.0f}–{hi - start:.0f}s) | {len(api)} | {percentile(api_ms, 50):.1f} | "
            f"{percentile(api_ms, 99):.1f} | {api_bad} | {len(pages)} | {percentile(page_ms, 50):.1f} | "
            f"{percentile(page_ms, 99):.1f} | {len(logins)} | {percentile([r[3] for r in logins], 50):.1f} | "
            f"{portal_bad} |"
        )
    usage_counted = after["usage"] - before["usage"]
    in_flight_at_kills = args.api_clients * sum(1 for fault in faults if fault.name.startswith("Redis"))
    login_rows = after["logins"] - before["logins"]
    other_audit = (after["audit"] - after["logins"]) - (before["audit"] - before["logins"])
    checks = {
        # A worker killed mid-request may have counted a request whose answer never arrived.
        # So may a request re-sent after its connection dropped (a killed worker, a closed keep-alive),
        # and one in flight when Redis was SIGKILLed: the script counted it (AOF kept it) but the reply
        # was lost, so the gateway answered it from the database; at most one per API client per kill.
        "usage": counted_served
        <= usage_counted
        <= counted_served + api_transport_errors + api_retries + in_flight_at_kills,
        # A sign-in whose session save then failed (503) may already have written its audit row.
        "audit": logins_ok <= login_rows <= logins_ok + logins_503 and other_audit == 0,
        "flags": before["overrides"] == after["overrides"],
        "no 500": five_xx == 0,
    }
    lines += [
        "",
        "Checks:",
        f"- usage: API requests answered 200 through Redis: {counted_served}; `requests` flushed to UsageDaily: "
        f"{usage_counted} (surplus {usage_counted - counted_served}; allowed: {api_transport_errors} API transport "
        f"errors + {api_retries} requests re-sent after a dropped connection + at most {in_flight_at_kills} "
        "in flight when Redis was killed) — "
        f"{'OK' if checks['usage'] else 'FAILED'}. Another {uncounted_served} requests were answered from the "
        "database while Redis was unreachable (fail-open) and could not be counted in Redis.",
        f"- audit: successful sign-ins {logins_ok} (+{logins_503} answered 503 by the session store); "
        f"`auth.login` rows written {login_rows}; other audit rows written {other_audit} — "
        f"{'OK' if checks['audit'] else 'FAILED'}",
        f"- flag overrides unchanged: {'OK' if checks['flags'] else 'FAILED'}",
        f"- 500-class answers other than 503: {five_xx}; 503s: {sum(1 for r in records if r[2] == 503)}; "
        f"transport errors: {transport_errors} — {'OK' if checks['no 500'] else 'FAILED'}",
    ]
    return "\n".join(lines) + "\n", all(checks.values())


if __name__ == "__main__":
    sys.exit(main())
