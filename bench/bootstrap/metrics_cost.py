"""Measure what the Prometheus metrics cost on warm /api/v1/bootstrap: metrics on vs off, same run.

    .venv/bin/python -m bench.bootstrap.metrics_cost [--duration 8] [--connections 16] [--rounds 4]

Starts one redis-server, one seeded SQLite database and two gunicorns (gthread, 2
workers each) that differ only in METRICS_ENABLED (the "on" one in multiprocess mode,
as production runs), then loads them alternately, ABBA-ordered, so drift in what else
the machine runs falls on both sides. Prints req/s and app CPU per request of each
round and the on/off ratios.

Then, because req/s on a shared machine swings by more than the effect measured, the
same comparison in one process: the full middleware stack and view through Django's
test client, metrics switched on and off between interleaved blocks, CPU time
(`time.process_time`) per request — what the recorders add, without the network.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from agentapi_admin.redis_process import RedisProcess, free_port
from bench.bootstrap.run import bench_env, cpu_seconds, manage, run_python_load, run_wrk, wait_http

IN_PROCESS = """
import json, statistics, sys, time
import django
django.setup()
from django.conf import settings
from django.test import Client
secret, blocks = sys.argv[1], int(sys.argv[2])
client, headers = Client(HTTP_HOST="127.0.0.1"), {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
def block(enabled):
    settings.METRICS_ENABLED = enabled
    started = time.process_time()
    for _ in range(300):
        assert client.get("/api/v1/bootstrap", **headers).status_code == 200
    return (time.process_time() - started) / 300 * 1e6
block(True), block(False)  # warm both paths
cost = {True: [], False: []}
for index in range(blocks):
    for enabled in ((True, False) if index % 2 == 0 else (False, True)):
        cost[enabled].append(block(enabled))
on, off = statistics.median(cost[True]), statistics.median(cost[False])
# The recorders one warm bootstrap calls, alone: deterministic code, so this resolves what the
# interleaved blocks above cannot on a loaded machine.
from agentapi_admin import metrics
from tenants.api.gateway import GatewayResult
from resilience.ratelimit.limiter import Decision
settings.METRICS_ENABLED = True
result = GatewayResult("ok", tenant_id="t", payload=b"x", decision=Decision(True, 1, 1, 0, 0))
errors = metrics.counting_redis_errors()
samples = []
for _ in range(7):
    started = time.process_time()
    for _ in range(20000):
        metrics.http_observe("/api/v1/bootstrap", "GET", 200, 0.003)
        metrics.gateway_observe(result)
        with errors:
            pass
    samples.append((time.process_time() - started) / 20000 * 1e6)
recorders = statistics.median(samples)
print(json.dumps({"cpu_us_on": round(on, 1), "cpu_us_off": round(off, 1), "added_us": round(on - off, 1),
                  "ratio_off_on": round(off / on, 4), "blocks": blocks, "requests_per_block": 300,
                  "recorders_us_per_request": round(recorders, 2),
                  "recorders_share_of_off": round(recorders / off, 4)}))
"""


def start_gunicorn(env: dict, threads: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "agentapi_admin.wsgi:application",
            "-k",
            "gthread",
            "--workers",
            "2",
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--config",
            str(Path(__file__).with_name("gunicorn_bench.py")),
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        start_new_session=True,
    )
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return process, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds per load run (max 30)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4, help="ABBA rounds: each loads both servers")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--blocks", type=int, default=20, help="in-process blocks of 300 requests per side")
    options = parser.parse_args()
    duration = min(options.duration, 30)
    use_wrk = options.load == "wrk" or (options.load == "auto" and shutil.which("wrk"))
    load = run_wrk if use_wrk else run_python_load

    workdir = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    server = RedisProcess(directory=workdir / "redis").start()
    base_env = bench_env(server.url, workdir / "db.sqlite3")
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        manage(base_env, "migrate", "--noinput")
        keys = json.loads(manage(base_env, "seed_demo", "--json").strip().splitlines()[-1])["api_keys"]
        (workdir / "metrics").mkdir()
        variants = {
            "on": {**base_env, "METRICS_ENABLED": "true", "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics")},
            "off": {**base_env, "METRICS_ENABLED": "false"},
        }
        for name, env in variants.items():
            servers[name] = start_gunicorn(env, options.threads)
        auth = {"Authorization": f"Bearer {keys['acme']}"}
        for _, port in servers.values():  # warm both workers' caches and connections
            for _ in range(8):
                request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/bootstrap", headers=auth)
                urllib.request.urlopen(request, timeout=5).read()  # noqa: S310 - fixed local URL
        results: dict[str, list[dict]] = {"on": [], "off": []}
        for round_index in range(options.rounds):
            order = ("on", "off") if round_index % 2 == 0 else ("off", "on")
            for name in order:
                process, port = servers[name]
                before = cpu_seconds(process.pid)
                outcome = load(f"http://127.0.0.1:{port}/api/v1/bootstrap", auth, duration, options.connections)
                outcome["app_cpu_us"] = (cpu_seconds(process.pid) - before) / outcome["requests"] * 1e6
                results[name].append(outcome)
        in_process = subprocess.run(
            [sys.executable, "-c", IN_PROCESS, keys["acme"], str(options.blocks)],
            cwd=Path(__file__).resolve().parents[2],
            env=variants["on"],
            capture_output=True,
            text=True,
            check=True,
        )
        ratios = [on["rps"] / off["rps"] for on, off in zip(results["on"], results["off"], strict=True)]
        cpu = [off["app_cpu_us"] / on["app_cpu_us"] for on, off in zip(results["on"], results["off"], strict=True)]
        summary = {
            "tool": results["on"][0]["tool"],
            "duration_s": duration,
            "connections": options.connections,
            "gunicorn": f"gthread, 2 workers x {options.threads} threads",
            "rps": {name: [round(run["rps"], 1) for run in runs] for name, runs in results.items()},
            "app_cpu_us_per_request": {
                name: [round(run["app_cpu_us"]) for run in runs] for name, runs in results.items()
            },
            "non_2xx": {name: sum(run["non_2xx"] for run in runs) for name, runs in results.items()},
            "rps_ratio_on_off_per_round": [round(r, 3) for r in ratios],
            "rps_ratio_on_off_median": round(statistics.median(ratios), 3),
            "cpu_ratio_off_on_median": round(statistics.median(cpu), 3),
            "in_process": json.loads(in_process.stdout.strip().splitlines()[-1]),
        }
        print(json.dumps(summary, indent=2))
        return 0 if not any(summary["non_2xx"].values()) else 1
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(10)
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
