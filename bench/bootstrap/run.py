"""Measure warm /api/v1/bootstrap against a bare Django JSON view under the same gunicorn, in one run.

    .venv/bin/python -m bench.bootstrap.run [--duration 8] [--connections 16] [--rounds 3]
        [--worker-class sync|gthread] [--threads N] [--keys N] [--cluster] [--flags F --segments S]

Starts its own redis-server and gunicorn (`-w 2`, sync workers unless told) on free
ports with a temporary SQLite database seeded by `seed_demo`, then loads each endpoint
from a second process (wrk when installed, else a Python load generator), alternating
the targets for `--rounds` rounds. With `--keys N` it also bulk-seeds N tenants with
one key each and adds a target that rotates through all N keys (a wrk Lua script),
compared with the one-key bootstrap driven the same way. With `--flags F --segments S` it
first defines F more flags and S segments, with rules on half of the flags
(`bench/bootstrap/seed_flags.py`), so the bootstrap carries their compiled entries.
Prints a JSON summary: req/s
and CPU per request of each target, the ratios, and Redis commands per request from
the INFO commandstats delta.

With `--cluster` it also starts a Redis Cluster (3 masters, 3 replicas) and a second,
identical gunicorn on the same database whose app reaches it through
REDIS_CLUSTER_NODES, and adds the targets `bootstrap_cluster` (and `rotating_cluster`
with `--keys`) to the same rounds. Their figures go to the summary's `cluster` section,
Redis CPU and commands summed over the masters; the other fields stay the standalone
run's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path

import redis

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))

from agentapi_admin.redis_process import RedisClusterProcesses, RedisProcess, free_port  # noqa: E402


def bench_env(redis_url: str, db_path: Path, cluster_nodes: str = "") -> dict:
    """Return the app's environment on `redis_url`, or on the Redis Cluster of `cluster_nodes` when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "RATE_LIMIT_", "DJANGO_"))}
    env.update(
        {
            "READ_ENV_FILE": "false",
            "DJANGO_SETTINGS_MODULE": "bench.bootstrap.settings",
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "x" * 60,
            "TOKEN_ENCRYPTION_KEY": "ab" * 32,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "DATABASE_URL": f"sqlite:///{db_path}",
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "warning",
            # The limiter runs on every request; the limit is high so the bench measures admitted requests.
            "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000",
            "RATE_LIMIT_BURST_SIZE": "100000",
            # The bench measures warm requests: entries filled by the warm-up must outlive the run
            # (with --keys 10000 on a slow machine the warm-up alone can take minutes).
            "TENANTS_CACHE_TTL": "3600s",
        }
    )
    if cluster_nodes:
        del env["REDIS_URL"]  # cluster mode ignores it: leaving it set would only mislead a reader of the env
        env["REDIS_CLUSTER_NODES"] = cluster_nodes
    return env


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - fixed local URL
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"gunicorn did not answer {url}")


ROTATE_SCRIPT = Path(__file__).with_name("rotate_keys.lua")


def run_wrk(
    url: str, headers: dict, duration: int, connections: int, keys_file: Path | None = None, start: int = 0
) -> dict:
    """Load `url` with wrk; with `keys_file`, every request carries the next key of the file from `start` on."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    env = dict(os.environ)
    if keys_file is not None:
        args += ["-s", str(ROTATE_SCRIPT)]
        env["BENCH_KEYS_FILE"] = str(keys_file)
        env["BENCH_KEYS_START"] = str(start)
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True, env=env).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return {
        "rps": rps,
        "requests": total,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "p99": p99.group(1) if p99 else None,
        "tool": "wrk",
    }


def run_python_load(
    url: str, headers: dict, duration: int, connections: int, keys_file: Path | None = None, start: int = 0
) -> dict:
    """Keep-alive HTTP/1.1 load from threads; used only when wrk is not installed."""
    host, port = url.split("/")[2].split(":")
    path = "/" + url.split("/", 3)[3]
    counts, bad = [0] * connections, [0] * connections
    stop = time.monotonic() + duration
    keys = keys_file.read_text().split() if keys_file is not None else []

    def worker(index: int) -> None:
        conn = HTTPConnection(host, int(port), timeout=10)
        position = start + index * len(keys) // connections
        own = dict(headers)
        while time.monotonic() < stop:
            if keys:
                position = (position + 1) % len(keys)
                own["Authorization"] = f"Bearer {keys[position]}"
            conn.request("GET", path, headers=own)
            response = conn.getresponse()
            response.read()
            counts[index] += 1
            bad[index] += response.status >= 400

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"rps": sum(counts) / elapsed, "requests": sum(counts), "non_2xx": sum(bad), "p99": None, "tool": "python"}


def cpu_seconds(pid: int) -> float:
    """Return user+system CPU seconds of a process and its live children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(child) for child in (task / "children").read_text().split()]
    total = 0
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def commandstats(client: redis.Redis) -> dict:
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()}


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    return round(statistics.median(a / b for a, b in zip(numerators, denominators, strict=True)), 3)


def apikey_entries(client: redis.Redis) -> int:
    """Return how many API-key entries Redis holds (the warm-up's coverage)."""
    # Entries carry the tenant's hash tag; `agentapi:apikey:route:*` (one per key too) must not count.
    return sum(1 for _ in client.scan_iter(match="agentapi:apikey:{*", count=1000))


BACKGROUND = ("info", "replconf")


@dataclass
class Stack:
    """One gunicorn and the Redis its app uses: where a target's CPU and Redis commands are counted."""

    gunicorn: subprocess.Popen
    base: str
    masters: list[RedisProcess]  # CPU and commands are summed over these
    replicas: list[RedisProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clients = [redis.Redis(port=node.port) for node in self.masters]

    def cpu(self) -> tuple[float, float, float]:
        """Return CPU seconds so far of the gunicorn, of the masters and of the replicas."""
        return (
            cpu_seconds(self.gunicorn.pid),
            sum(cpu_seconds(node.process.pid) for node in self.masters),
            sum(cpu_seconds(node.process.pid) for node in self.replicas),
        )

    def commandstats(self) -> list[dict]:
        return [commandstats(client) for client in self.clients]

    def rejected(self) -> int:
        """Return the calls the masters refused so far, MOVED and ASK redirects included."""
        return sum(
            stats.get("rejected_calls", 0) for client in self.clients for stats in client.info("commandstats").values()
        )

    def apikey_entries(self) -> int:
        return sum(apikey_entries(client) for client in self.clients)

    def close(self) -> None:
        for client in self.clients:
            client.close()


def start_gunicorn(env: dict, worker: list[str], started: list[subprocess.Popen]) -> tuple[subprocess.Popen, str]:
    """Start the app under gunicorn on a free port (appended to `started` at once) and wait for /healthz."""
    port = free_port()
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "agentapi_admin.wsgi:application",
            *worker,
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--config",
            str(Path(__file__).with_name("gunicorn_bench.py")),
        ],
        cwd=BASE_DIR,
        env=env,
        start_new_session=True,
    )
    started.append(gunicorn)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz")
    return gunicorn, base


def measure(load, stack: Stack, target: tuple, duration: int, connections: int, start: int) -> dict:
    """Load one target once; add CPU per request and the Redis commands of the run, summed over the masters."""
    url, headers, keys_file = target
    before, rejected_before, cpu_before = stack.commandstats(), stack.rejected(), stack.cpu()
    outcome = load(url, headers, duration, connections, keys_file, start)
    cpu_after, after = stack.cpu(), stack.commandstats()
    outcome["rejected_calls"] = stack.rejected() - rejected_before
    # CPU per request barely depends on what else the machine runs, unlike req/s.
    app, masters, replicas = ((a - b) / outcome["requests"] * 1e6 for a, b in zip(cpu_after, cpu_before, strict=True))
    outcome["app_cpu_us"], outcome["redis_cpu_us"] = app, masters
    if stack.replicas:
        outcome["replica_cpu_us"] = replicas
    # INFO is the bench's own; REPLCONF is each replica's once-a-second acknowledgement, whatever the traffic.
    per_node = [
        {cmd: n for cmd in node_after if (n := node_after[cmd] - node_before.get(cmd, 0)) and cmd not in BACKGROUND}
        for node_before, node_after in zip(before, after, strict=True)
    ]
    outcome["redis_commands"] = dict(sum((Counter(node) for node in per_node), Counter()))
    outcome["commands_per_master"] = [sum(node.values()) for node in per_node]
    return outcome


def per_request(commands: dict, requests: int) -> dict:
    per = {cmd: round(n / requests, 3) for cmd, n in sorted(commands.items())}
    per["total"] = round(sum(commands.values()) / requests, 2)
    return per


def warm_rotation(load, stack: Stack, target: tuple, keys: int, connections: int) -> tuple[dict, int]:
    """Rotate through every key until each has its entry (at most 15 min); return the coverage and the position."""
    # The bench is about warm requests. Each run continues the rotation where the last stopped, so every key is reached.
    started, position = time.monotonic(), 0
    while stack.apikey_entries() < keys + 1 and time.monotonic() - started < 900:
        position += load(target[0], target[1], 5, connections, target[2], position)["requests"] // 2
    return {"entries": stack.apikey_entries(), "seconds": round(time.monotonic() - started, 1)}, position


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds per load run (max 30)")
    parser.add_argument("--connections", type=int, default=16)
    # Rounds alternate the targets so each ratio compares neighbours in time:
    # on a shared machine the load from other processes drifts by more than the effect measured.
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per gthread worker")
    parser.add_argument("--keys", type=int, default=0, help="also rotate through N keys of N bulk-seeded tenants")
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto", help="load generator")
    parser.add_argument("--flags", type=int, default=0, help="also define N flags, rules on half of them")
    parser.add_argument("--segments", type=int, default=0, help="segments the --flags rules use")
    parser.add_argument(
        "--cluster", action="store_true", help="also run the bootstrap on a Redis Cluster (3 masters + 3 replicas)"
    )
    options = parser.parse_args()
    if options.keys < 0 or options.threads < 1 or options.rounds < 1 or options.flags < 0 or options.segments < 0:
        parser.error("--keys, --flags and --segments must be >= 0, --threads and --rounds >= 1")
    if options.threads != 1 and options.worker_class != "gthread":
        parser.error("--threads needs --worker-class gthread")
    duration = min(options.duration, 30)
    use_wrk = options.load == "wrk" or (options.load == "auto" and shutil.which("wrk"))
    load = run_wrk if use_wrk else run_python_load

    workdir = Path(tempfile.mkdtemp(prefix="bench-bootstrap-"))
    server = RedisProcess(directory=workdir / "redis").start()
    cluster = None
    env = bench_env(server.url, workdir / "db.sqlite3")
    gunicorns: list[subprocess.Popen] = []
    stacks: list[Stack] = []
    load_before = os.getloadavg()
    try:
        manage(env, "migrate", "--noinput")
        demo_keys = json.loads(manage(env, "seed_demo", "--json").strip().splitlines()[-1])["api_keys"]
        if options.flags or options.segments:
            subprocess.run(
                [sys.executable, "-m", "bench.bootstrap.seed_flags", str(options.flags), str(options.segments)],
                cwd=BASE_DIR,
                env=env,
                check=True,
            )
        one_key = workdir / "one-key.txt"
        one_key.write_text(demo_keys["acme"] + "\n")
        many_keys = workdir / "keys.txt"
        if options.keys:
            subprocess.run(
                [sys.executable, "-m", "bench.bootstrap.seed_keys", str(options.keys), str(many_keys)],
                cwd=BASE_DIR,
                env=env,
                check=True,
            )
        worker = ["-k", options.worker_class, "--workers", "2"]
        if options.worker_class == "gthread":
            worker += ["--threads", str(options.threads)]
        standalone = Stack(*start_gunicorn(env, worker, gunicorns), masters=[server])
        stacks.append(standalone)
        base = standalone.base
        # name -> (stack, (url, fixed headers, keys file rotated through per request))
        targets = {
            "bare": (standalone, (f"{base}/bench/bare", {}, None)),
            "cache_get": (standalone, (f"{base}/bench/cache-get", {}, None)),
            "bootstrap": (standalone, (f"{base}/api/v1/bootstrap", {}, one_key)),
        }
        if options.cluster:
            # The same app on the same database; only its Redis differs. The cluster starts empty: the
            # gateway finds its script missing and republishes every tenant's version, as after a restart.
            # Redis's default node timeout: the tests' short one only speeds up failovers, which no run causes.
            cluster = RedisClusterProcesses(directory=workdir / "cluster", node_timeout_ms=15000).start()
            cluster_env = bench_env(server.url, workdir / "db.sqlite3", cluster_nodes=cluster.seeds)
            masters = cluster.master_nodes()
            replicas = [node for node in cluster.nodes if node not in masters]
            clustered = Stack(*start_gunicorn(cluster_env, worker, gunicorns), masters=masters, replicas=replicas)
            stacks.append(clustered)
            targets["bootstrap_cluster"] = (clustered, (f"{clustered.base}/api/v1/bootstrap", {}, one_key))
        if options.keys:
            targets["rotating"] = (standalone, (f"{base}/api/v1/bootstrap", {}, many_keys))
            if options.cluster:
                targets["rotating_cluster"] = (clustered, (f"{clustered.base}/api/v1/bootstrap", {}, many_keys))
        # Warm both workers' caches and connections. A Redis's first gateway call finds the script missing
        # and republishes every tenant's version first, which takes seconds with --keys.
        for _, (url, headers, keys_file) in targets.values():
            if keys_file is not None:
                headers = {**headers, "Authorization": f"Bearer {keys_file.read_text().split()[0]}"}
            for _ in range(8):
                urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30).read()  # noqa: S310
        auth = {"Authorization": f"Bearer {demo_keys['acme']}"}
        request = urllib.request.Request(f"{base}/api/v1/bootstrap", headers=auth)  # noqa: S310 - fixed local URL
        document = urllib.request.urlopen(request, timeout=5).read()  # noqa: S310
        warm = {}
        rotation = {}  # where each rotating target's next run starts in the key list
        for name in ("rotating", "rotating_cluster"):
            if name in targets:
                stack, target = targets[name]
                warm[name], rotation[name] = warm_rotation(load, stack, target, options.keys, options.connections)
        results = {name: [] for name in targets}
        redis_per_request = {name: [] for name in targets if name.startswith(("bootstrap", "rotating"))}
        for _ in range(options.rounds):
            for name, (stack, target) in targets.items():
                outcome = measure(load, stack, target, duration, options.connections, rotation.get(name, 0))
                if name in rotation:
                    rotation[name] += outcome["requests"] // 2
                results[name].append(outcome)
                if name in redis_per_request:
                    redis_per_request[name].append(per_request(outcome["redis_commands"], outcome["requests"]))
        rps = {name: [run["rps"] for run in runs] for name, runs in results.items()}
        cpu = {name: [run["app_cpu_us"] + run["redis_cpu_us"] for run in runs] for name, runs in results.items()}
        on_cluster = [name for name in targets if name.endswith("_cluster")]
        bootstrapish = [name for name in targets if name != "bare" and name not in on_cluster]
        gunicorn_label = f"{options.worker_class}, 2 workers"
        if options.worker_class == "gthread":
            gunicorn_label += f" x {options.threads} threads"
        summary = {
            "tool": results["bare"][0]["tool"],
            "duration_s": duration,
            "connections": options.connections,
            "gunicorn": gunicorn_label,
            "keys": options.keys,
            "flags_added": options.flags,
            "segments_added": options.segments,
            "bootstrap": {"bytes": len(document), "flags": len(json.loads(document)["flags"])},
            "warm_up": warm.get("rotating", {}),
            "load_average_before_after": [round(x, 2) for x in (*load_before, *os.getloadavg())],
            "rps": {name: [round(x, 1) for x in rps[name]] for name in ("bare", *bootstrapish)},
            "non_2xx": {name: sum(run["non_2xx"] for run in results[name]) for name in ("bare", *bootstrapish)},
            "ratio_median": {name: median_ratio(rps[name], rps["bare"]) for name in bootstrapish},
            "cpu_us_per_request": {
                name: {
                    "app": [round(run["app_cpu_us"]) for run in results[name]],
                    "redis": [round(run["redis_cpu_us"]) for run in results[name]],
                }
                for name in ("bare", *bootstrapish)
            },
            # bare's CPU per request / the target's (app + Redis): the throughput ratio on an idle CPU-bound box.
            "cpu_ratio_median": {name: median_ratio(cpu["bare"], cpu[name]) for name in bootstrapish},
            "redis_commands_per_request": {
                name: redis_per_request[name] for name in bootstrapish if name != "cache_get"
            },
            "p99": {name: [run["p99"] for run in results[name]] for name in ("bare", *bootstrapish)},
        }
        if options.keys:
            summary["rotating_vs_one_key"] = {
                "rps_ratio_median": median_ratio(rps["rotating"], rps["bootstrap"]),
                "cpu_ratio_median": median_ratio(cpu["bootstrap"], cpu["rotating"]),
            }
        if options.cluster:
            summary["cluster"] = {
                "redis": f"{cluster.masters} masters + {cluster.masters * cluster.replicas} replicas",
                "warm_up": warm.get("rotating_cluster", {}),
                "rps": {name: [round(x, 1) for x in rps[name]] for name in on_cluster},
                "non_2xx": {name: sum(run["non_2xx"] for run in results[name]) for name in on_cluster},
                "ratio_median": {name: median_ratio(rps[name], rps["bare"]) for name in on_cluster},
                # Redis CPU is the masters' (they serve every command); the replicas' is what replication costs.
                "cpu_us_per_request": {
                    name: {
                        "app": [round(run["app_cpu_us"]) for run in results[name]],
                        "redis_masters": [round(run["redis_cpu_us"]) for run in results[name]],
                        "redis_replicas": [round(run["replica_cpu_us"]) for run in results[name]],
                    }
                    for name in on_cluster
                },
                "cpu_ratio_median": {name: median_ratio(cpu["bare"], cpu[name]) for name in on_cluster},
                # The cluster target against the same target on the standalone Redis, round by round.
                "vs_standalone": {
                    name: {
                        "rps_ratio_median": median_ratio(rps[name], rps[name.removesuffix("_cluster")]),
                        "cpu_ratio_median": median_ratio(cpu[name.removesuffix("_cluster")], cpu[name]),
                    }
                    for name in on_cluster
                },
                "redis_commands_per_request": {name: redis_per_request[name] for name in on_cluster},
                # Calls the masters refused (a MOVED or ASK redirect is one), per round: 0 when routing by slot works.
                "rejected_calls": {name: [run["rejected_calls"] for run in results[name]] for name in on_cluster},
                "commands_per_master": {
                    name: [run["commands_per_master"] for run in results[name]] for name in on_cluster
                },
                "p99": {name: [run["p99"] for run in results[name]] for name in on_cluster},
            }
        print(json.dumps(summary, indent=2))
        failed = any(summary["non_2xx"].values()) or any(summary.get("cluster", {}).get("non_2xx", {}).values())
        return 1 if failed else 0
    finally:
        for stack in stacks:
            stack.close()
        for gunicorn in gunicorns:
            gunicorn.terminate()
            gunicorn.wait(10)
        if cluster is not None:
            cluster.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
