"""Run cleanup_sessions over a million session-index keys while another process reads sessions.

    .venv/bin/python -m bench.cleanup_sessions.run [--keys 1000000] [--batch-size 1000] [--pause-ms 0] [--baseline 10]

Starts its own redis-server on a free port and fills it with `--keys` per-user session
indexes (`agentapi:sessidx:<n>`) in a server-side Lua loop: every index has one live
member; a quarter also have an expired member; half of the live members have their
session data (`agentapi:session:...`, what the load generator reads), the other half are
orphans. A load generator process then GETs random session keys at a fixed pace
(one every 0.5 ms, one connection) for `--baseline` seconds alone, and again while
`manage.py cleanup_sessions` runs as a subprocess. Prints a JSON summary: the command's
keys/s and peak RSS (ru_maxrss from wait4), and p50/p99/max latency of the reads in each
phase; checks that exactly the expired and orphaned entries went.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))

from agentapi_admin.redis_process import RedisProcess  # noqa: E402

PREFIX = "agentapi"
# Django's cache key for a session (KEY_PREFIX:VERSION:django.contrib.sessions.cache<session key>).
SESSION_KEY = PREFIX + ":session:1:django.contrib.sessions.cache{}"
FILL_CHUNK = 20_000
READ_PACE = 0.0005

# KEYS: none. ARGV: first n, last n, now ms. Builds indexes n..last as described above.
_FILL = """
local now = tonumber(ARGV[3])
for n = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local idx = 'agentapi:sessidx:' .. n
  local sk = string.format('s%031d', n)
  redis.call('ZADD', idx, now + 3600000, sk)
  if n % 4 == 0 then redis.call('ZADD', idx, now - 60000, 'x' .. sk) end
  if n % 2 == 0 then
    redis.call('SET', 'agentapi:session:1:django.contrib.sessions.cache' .. sk, 'data', 'EX', 7200)
  end
end
return 1
"""


def fill(client: redis.Redis, keys: int) -> float:
    started = time.perf_counter()
    script = client.register_script(_FILL)
    now = int(time.time() * 1000)
    for first in range(0, keys, FILL_CHUNK):
        script(args=[first, min(first + FILL_CHUNK, keys) - 1, now])
    return time.perf_counter() - started


def reader(url: str, keys: int, seconds: float, stop, out) -> None:
    """GET random live session keys at a fixed pace until `stop` or `seconds`; send back (time, ms) pairs."""
    client = redis.Redis.from_url(url)
    rng = random.Random(7)
    samples = []
    deadline = time.time() + seconds
    while not stop.is_set() and time.time() < deadline:
        n = rng.randrange(0, keys, 2)
        started = time.perf_counter()
        client.get(SESSION_KEY.format(f"s{n:031d}"))
        samples.append((time.time(), (time.perf_counter() - started) * 1000))
        time.sleep(READ_PACE)
    out.send(samples)


def percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {
        "reads": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)], 3),
        "max_ms": round(ordered[-1], 3),
    }


def start_reader(url: str, keys: int, seconds: float):
    parent, child = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    proc = multiprocessing.Process(target=reader, args=(url, keys, seconds, stop, child))
    proc.start()
    return proc, parent, stop


def run_cleanup(env: dict, batch_size: int, pause_ms: float) -> tuple[dict, float, int]:
    """Run the command; return (its JSON summary, wall seconds, peak RSS in kB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(BASE_DIR / "manage.py"),
            "cleanup_sessions",
            "--json",
            "--batch-size",
            str(batch_size),
            "--pause-ms",
            str(pause_ms),
        ],
        env=env,
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"cleanup_sessions failed ({proc.returncode}): {err.decode()}")
    return json.loads(out.decode().strip().splitlines()[-1]), time.perf_counter() - started, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--pause-ms", type=float, default=0.0, help="cleanup_sessions --pause-ms.")
    parser.add_argument("--baseline", type=float, default=10.0, help="Seconds of reads without the cleanup.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-cleanup-") as tmp:
        server = RedisProcess(directory=tmp).start()
        try:
            client = redis.Redis.from_url(server.url)
            fill_seconds = fill(client, args.keys)
            dbsize = client.dbsize()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "SESSION_", "DJANGO_"))}
            env.update(
                READ_ENV_FILE="false",
                DJANGO_SETTINGS_MODULE="agentapi_admin.settings",
                DEBUG="true",
                REDIS_URL=server.url,
                SESSION_STORAGE="redis",
                DATABASE_URL=f"sqlite:///{Path(tmp) / 'db.sqlite3'}",
            )

            proc, pipe, _ = start_reader(server.url, args.keys, args.baseline)
            baseline = percentiles([ms for _, ms in pipe.recv()])
            proc.join()

            proc, pipe, stop = start_reader(server.url, args.keys, 3600)
            time.sleep(0.5)
            window_start = time.time()
            summary, seconds, peak_kb = run_cleanup(env, args.batch_size, args.pause_ms)
            window_end = time.time()
            stop.set()
            during = percentiles([ms for at, ms in pipe.recv() if window_start <= at <= window_end])
            proc.join()

            expected_expired = (args.keys + 3) // 4
            expected_orphans = args.keys // 2
            left = client.dbsize()
            checks = {
                "expired_removed_as_expected": summary["expired_entries"] == expected_expired,
                "orphans_removed_as_expected": summary["orphaned_entries"] == expected_orphans,
                # Odd users had only an orphan: their index disappears; everything else stays.
                "keys_left_as_expected": left == dbsize - expected_orphans,
            }
        finally:
            server.stop()
    result = {
        "index_keys": summary["index_keys"],
        "entries_removed": summary["expired_entries"] + summary["orphaned_entries"],
        "batch_size": args.batch_size,
        "pause_ms": args.pause_ms,
        "fill_seconds": round(fill_seconds, 1),
        "command_seconds": round(seconds, 2),
        "command_internal_seconds": summary["seconds"],
        "keys_per_second": round(summary["index_keys"] / summary["seconds"]),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "reads_without_cleanup": baseline,
        "reads_during_cleanup": during,
        "p99_ratio": round(during["p99_ms"] / baseline["p99_ms"], 2),
        "checks": checks,
        "cpu": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))
    if not all(checks.values()):
        raise SystemExit("cleanup_sessions removed the wrong entries: see checks")


if __name__ == "__main__":
    main()
