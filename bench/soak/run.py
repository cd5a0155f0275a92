"""Soak test: gunicorn under load from several client processes while Redis, PostgreSQL and a worker fail.

    .venv/bin/python bench/soak/run.py --duration 120 --report /tmp/soak.md

What it does, all on 127.0.0.1 and bounded in time:
1. starts its own redis-server (AOF, fsync always, so a SIGKILL loses nothing that was
   acknowledged) and creates a PostgreSQL database of its own (`soak_<random>` on the server
   of `--database-url`, dropped at the end) or uses SQLite;
2. migrates, runs `seed_demo --json` for the API keys and demo logins;
3. serves the app with gunicorn (gthread) in production mode (DEBUG=false);
4. drives the service API (`GET /api/v1/bootstrap`, both tenants) and the portal (logged-in
   page views) from several client processes;
5. injects, in order: Redis SIGKILL + restart from AOF (twice), Redis SIGSTOP/SIGCONT, Redis
   full (`maxmemory` 1 with `noeviction`), the database unreachable (PostgreSQL only:
   connections refused and terminated), then one gunicorn worker SIGKILL;
6. reports requests served, errors by status, p50/p99 latency before/during/after each
   fault, and checks nothing was lost: audit rows and flags unchanged, and usage counted in
   Redis and flushed to the database matching the API requests served; and, for each Redis
   fault, that a key revoked while the fault was on (by a `manage.py shell` that exits
   before the fault ends) is never answered 200 in the 2 s after it ends (stale answers).
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
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))

from agentapi_admin.redis_process import free_port  # noqa: E402
from bench.soak.client import Client  # noqa: E402
from tests.faults.harness import FaultDatabase, FaultRedis, wait_for  # noqa: E402
from tests.faults.redis_faults import writes_refused  # noqa: E402

PYTHON = sys.executable


# ----------------------------------------------------------------------------- clients
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
        "from audit.models import AuditEvent; from tenants.models import TenantFlag, UsageDaily;"
        "from django.db.models import Sum;"
        "print(json.dumps({'audit': AuditEvent.objects.count(),"
        "'logins': AuditEvent.objects.filter(action='auth.login').count(),"
        "'overrides': sorted([f'{o.tenant.slug}:{o.flag.key}:{o.enabled}:{o.rollout_percent}' for o in TenantFlag.objects.select_related('tenant','flag')]),"
        "'usage': UsageDaily.objects.filter(metric='requests').aggregate(total=Sum('count'))['total'] or 0}))"
    )
    out = subprocess.run([PYTHON, "-c", code], env=env, cwd=BASE_DIR, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


_ISSUE_PROBE_KEY = (
    "from django.contrib.auth import get_user_model; from tenants.models import Tenant; "
    "from tenants.services.apikeys import apikey_issue; "
    "print(apikey_issue(tenant=Tenant.objects.get(slug='acme'), name={name!r}, scopes=None, "
    "actor=get_user_model().objects.get(username='admin'))[1])"
)
_REVOKE_PROBE_KEY = (
    "from django.contrib.auth import get_user_model; from tenants.models import ApiKey; "
    "from tenants.services.apikeys import apikey_hash, apikey_revoke; "
    "apikey_revoke(api_key=ApiKey.objects.get(secret_hash=apikey_hash({secret!r})), "
    "actor=get_user_model().objects.get(username='admin'))"
)
PROBE_SECONDS = 2.0


class StaleProbe:
    """Revoke a warm key while a fault is on (from a process that then exits); count its 200s after recovery."""

    def __init__(self, port: int, env: dict) -> None:
        self.port, self.env = port, env
        self.probes = self.stale = self.answers = 0
        self.bound_s = 0.0
        self._secret = ""

    def prepare(self, name: str) -> None:
        """Issue a key for the next fault and warm its cached entry (before the fault starts)."""
        self._secret = manage(self.env, "shell", "-c", _ISSUE_PROBE_KEY.format(name=name)).strip().splitlines()[-1]
        client = Client(self.port)
        for _ in range(4):
            client.request("GET", "/api/v1/bootstrap", headers={"Authorization": f"Bearer {self._secret}"})

    def revoke(self) -> None:
        """Revoke it while the fault is on; the revoking process exits before Redis is back."""
        manage(self.env, "shell", "-c", _REVOKE_PROBE_KEY.format(secret=self._secret))

    def after_recovery(self) -> None:
        """Ask with the revoked key for PROBE_SECONDS from the moment the fault ends; a 200 is a stale answer."""
        client, began = Client(self.port), time.monotonic()
        self.probes += 1
        while time.monotonic() - began < PROBE_SECONDS:
            status = client.request("GET", "/api/v1/bootstrap", headers={"Authorization": f"Bearer {self._secret}"})[0]
            self.answers += 1
            if status == 200:
                self.stale += 1
                self.bound_s = max(self.bound_s, time.monotonic() - began)

    def result(self) -> dict:
        return {"probes": self.probes, "answers": self.answers, "stale": self.stale, "bound_s": self.bound_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120, help="seconds of load (default 120, max 600)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--api-clients", type=int, default=4)
    parser.add_argument("--portal-clients", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server to create the soak's own database on (its path is ignored), or a sqlite:/// URL "
        "(then the database fault is left out)",
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
    redis_server = FaultRedis(directory=workdir / "redis")
    redis_server.start()
    database = None
    database_url = args.database_url
    if database_url.startswith(("postgres://", "postgresql://")):
        admin_url = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))
        database = FaultDatabase(admin_url, prefix="soak").create()
        database_url = database.url
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
        "DATABASE_URL": database_url,
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
        if database is None:
            # SQLite is reused: stale usage rows from an earlier soak would skew the check.
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

        probe = StaleProbe(port, env)

        def fault(name: str, down: float, up: float, begin, finish, settle: float = 2.0, stale: bool = True) -> None:
            if stale:
                probe.prepare(f"stale probe: {name}")
            at(down)
            t0 = time.time()
            begin()
            if stale:
                probe.revoke()  # committed while the fault is on, by a process gone before it ends
            at(up)
            finish()
            if stale:
                probe.after_recovery()
            faults.append(Fault(name, t0, time.time() + settle))

        for n, (down, up) in enumerate([(0.08, 0.16), (0.22, 0.30)], start=1):
            fault(f"Redis kill #{n}", down, up, redis_server.kill, redis_server.start)
        fault("Redis SIGSTOP", 0.36, 0.42, redis_server.pause, redis_server.resume)
        full = writes_refused(redis_server, "oom")
        fault("Redis OOM", 0.48, 0.56, full.__enter__, lambda: full.__exit__(None, None, None))
        if database is not None:
            fault("DB unreachable", 0.62, 0.70, database.make_unreachable, database.restore, settle=3.0, stale=False)
        at(0.80)
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

        # flush_usage needs Redis and the database; give every worker's breaker time to close first.
        wait_for(lambda: redis_server.ping(), "Redis after the last fault", 30)
        manage(env, "flush_usage")
        after = snapshot(env)
        stale = probe.result()
    finally:
        if gunicorn is not None:
            gunicorn.send_signal(signal.SIGTERM)
            try:
                gunicorn.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
        redis_server.stop()
        if database is not None:
            database.drop()

    report, ok = render(records, faults, start, end, before, after, args, duration, api_retries, stale)
    print(report)
    if args.report:
        args.report.write_text(report)
    return 0 if ok else 1


def render(records, faults, start, end, before, after, args, duration, api_retries, stale) -> tuple[str, bool]:
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
        "database while Redis was unreachable, paused or refusing writes (fail-open: no RateLimit headers, not "
        "counted); `portal` = a "
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
    # A script sent to a paused Redis runs when it resumes, after the gateway gave up on it
    # (REDIS_CONNECTION_TIMEOUT=1s) and answered from the database: such an answer may have
    # been counted too. Answers the open Redis breaker gave at once never reached Redis.
    late_after_pause = sum(
        1
        for fault in faults
        if fault.name == "Redis SIGSTOP"
        for ts, kind, _, ms in records
        if kind == "api-noredis" and fault.start <= ts < fault.end and ms >= 900
    )
    login_rows = after["logins"] - before["logins"]
    other_audit = (after["audit"] - after["logins"]) - (before["audit"] - before["logins"])
    checks = {
        # A worker killed mid-request may have counted a request whose answer never arrived.
        # So may a request re-sent after its connection dropped (a killed worker, a closed keep-alive),
        # and one in flight when Redis was SIGKILLed: the script counted it (AOF kept it) but the reply
        # was lost, so the gateway answered it from the database; at most one per API client per kill.
        "usage": counted_served
        <= usage_counted
        <= counted_served + api_transport_errors + api_retries + in_flight_at_kills + late_after_pause,
        # A sign-in whose session save then failed (503) may already have written its audit row.
        # The stale probe issues and revokes one key per fault: two audit rows each, no more.
        "audit": logins_ok <= login_rows <= logins_ok + logins_503 and other_audit == 2 * stale["probes"],
        "flags": before["overrides"] == after["overrides"],
        "no 500": five_xx == 0,
    }
    checks["stale"] = stale["stale"] == 0
    lines += [
        "",
        "Checks:",
        f"- usage: API requests answered 200 through Redis: {counted_served}; `requests` flushed to UsageDaily: "
        f"{usage_counted} (surplus {usage_counted - counted_served}; allowed: {api_transport_errors} API transport "
        f"errors + {api_retries} requests re-sent after a dropped connection + at most {in_flight_at_kills} "
        f"in flight when a Redis fault began + {late_after_pause} answered from the database after a 1 s timeout "
        "during the pause, whose script may have run when Redis resumed) — "
        f"{'OK' if checks['usage'] else 'FAILED'}. Another {uncounted_served} requests were answered from the "
        "database while Redis was unreachable (fail-open) and could not be counted in Redis.",
        f"- audit: successful sign-ins {logins_ok} (+{logins_503} answered 503 by the session store); "
        f"`auth.login` rows written {login_rows}; other audit rows written {other_audit} (expected "
        f"{2 * stale['probes']}: the stale probe's key issues and revocations) — "
        f"{'OK' if checks['audit'] else 'FAILED'}",
        f"- flag overrides unchanged: {'OK' if checks['flags'] else 'FAILED'}",
        f"- 500-class answers other than 503: {five_xx}; 503s: {sum(1 for r in records if r[2] == 503)}; "
        f"transport errors: {transport_errors} — {'OK' if checks['no 500'] else 'FAILED'}",
        "- stale answers after recovery (a key revoked during each Redis fault, asked for 2 s from the moment "
        f"the fault ended): {stale['stale']} of {stale['answers']} answers over {stale['probes']} faults were 200"
        + (f", the last {stale['bound_s']:.2f} s after recovery" if stale["stale"] else "")
        + f" — {'OK' if checks['stale'] else 'FAILED'}",
    ]
    return "\n".join(lines) + "\n", all(checks.values())


if __name__ == "__main__":
    sys.exit(main())
