"""CPU per request of the bare view and the warm bootstrap through Django's WSGI handler, no HTTP server.

    .venv/bin/python -m bench.bootstrap.inprocess [--rounds 11] [--requests 1000] [--profile] [--cluster]
        [--flags F --segments S]

Starts its own redis-server and a temporary SQLite database seeded by `seed_demo`
(the same environment as `bench.bootstrap.run`), then calls the WSGI application
directly, alternating bare / bootstrap in rounds, and prints the median
`time.process_time` per request of each and their ratio. `--profile` adds a cProfile
of 3,000 bootstrap requests (CPU time), sorted by cumulative time. `--cluster` puts the
app on a Redis Cluster of its own (3 masters, 3 replicas; REDIS_CLUSTER_NODES) instead. `--flags F --segments S`
defines F more flags and S segments first (`bench/bootstrap/seed_flags.py`), as `run` does.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))

from agentapi_admin.redis_process import RedisClusterProcesses, RedisProcess  # noqa: E402
from bench.bootstrap.run import bench_env, manage  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--requests", type=int, default=1000, help="requests per target per round")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--flags", type=int, default=0, help="also define N flags, rules on half of them")
    parser.add_argument("--segments", type=int, default=0, help="segments the --flags rules use")
    parser.add_argument("--cluster", action="store_true", help="the app's Redis is a Redis Cluster")
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-inprocess-"))
    server = RedisProcess(directory=workdir / "redis").start()
    cluster = None
    try:
        seeds = ""
        if options.cluster:
            cluster = RedisClusterProcesses(directory=workdir / "cluster", node_timeout_ms=15000).start()
            seeds = cluster.seeds
        env = bench_env(server.url, workdir / "db.sqlite3", cluster_nodes=seeds)
        manage(env, "migrate", "--noinput")
        secret = json.loads(manage(env, "seed_demo", "--json").strip().splitlines()[-1])["api_keys"]["acme"]
        if options.flags or options.segments:
            seed = [sys.executable, "-m", "bench.bootstrap.seed_flags", str(options.flags), str(options.segments)]
            subprocess.run(seed, cwd=BASE_DIR, env=env, check=True)
        os.environ.update(env)
        import django
        from django.core.wsgi import get_wsgi_application

        django.setup()
        app = get_wsgi_application()

        def call(path: str, auth: str | None = None) -> str:
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": path,
                "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_HOST": "127.0.0.1",
                "wsgi.input": io.BytesIO(b""),
                "wsgi.url_scheme": "http",
            }
            if auth:
                environ["HTTP_AUTHORIZATION"] = f"Bearer {auth}"
            status = []
            b"".join(app(environ, lambda s, headers, *exc: status.append(s)))
            return status[0]

        targets = {"bare": ("/bench/bare", None), "bootstrap": ("/api/v1/bootstrap", secret)}
        for path, auth in targets.values():
            assert call(path, auth).startswith("200"), path
        times = {name: [] for name in targets}
        for _ in range(options.rounds):
            for name, (path, auth) in targets.items():
                started = time.process_time()
                for _ in range(options.requests):
                    call(path, auth)
                times[name].append((time.process_time() - started) / options.requests * 1e6)
        median = {name: statistics.median(values) for name, values in times.items()}
        summary = {
            "redis": "cluster" if options.cluster else "standalone",
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "flags_added": options.flags,
            "segments_added": options.segments,
            "cpu_us_per_request": {name: round(value, 1) for name, value in median.items()},
            "ratio": round(median["bare"] / median["bootstrap"], 3),
        }
        print(json.dumps(summary, indent=2))
        if options.profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for _ in range(3000):
                call(*targets["bootstrap"])
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        return 0
    finally:
        if cluster is not None:
            cluster.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
