"""The Redis health snapshot: one call gathers everything the ops page and `redis_health` show.

Each part is probed separately, so a provider that hides a command (Upstash refuses
CONFIG, SLOWLOG, CLIENT) costs only the fields that command fills: they read
"n/a" and the reason is listed. When Redis does not answer PING at all, the
snapshot says so and since when (as seen by this process).
"""

from __future__ import annotations

import statistics
import threading
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from resilience.connection import family_of
from resilience.health.cluster import cluster_overview, not_configured_reason
from resilience.health.probes import ClusterProbe, Probe, default_probe
from resilience.health.writes import refusal_reason, write_refusal
from resilience.sessions.keys import index_key

PING_SAMPLES = 5
SLOWLOG_FETCH = 128
SLOWLOG_TOP = 10
SCAN_STEP = 1000
# Rates need two samples; an older previous sample describes a different period.
SAMPLE_MAX_AGE = 300.0
SAMPLE_MIN_GAP = 0.5
SAMPLE_FIRST_GAP = 0.25
AREAS_TTL = 60.0

# Key families of docs/redis-keys.md (first segment after the prefix), in the order the page lists them.
FAMILIES = {
    "session": "Sessions",
    "sessidx": "Session index",
    "rl": "Rate limits",
    "rlidx": "Rate-limit index",
    "cb": "Circuit breakers",
    "flags": "Flag cache",
    "apikey": "API-key cache",
    "usage": "Usage counters",
    "cache": "Django cache",
    "lock": "Command locks",
    "hist": "Ops-page history",
}

_lock = threading.Lock()
# INFO names the roles master and slave; the pages say primary and replica.
_ROLE_NAMES: dict[object, str] = {"master": "primary", "slave": "replica"}
# Per process and per target: the failure clock, the previous stats sample, the areas sample.
_failing_since: dict[str, float] = {}
_last_ok: dict[str, float] = {}
_previous_sample: dict[str, dict] = {}
_last_rates: dict[str, dict] = {}
_areas_cache: dict[str, tuple[float, dict]] = {}


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds") if epoch else None


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def redis_health_snapshot(probe: Probe | None = None, *, quick: bool = False) -> dict:
    """Return the health of the app's Redis as a JSON-ready dict (never raises for Redis failures).

    `quick` (the `redis_health` command, a healthcheck) skips the parts that wait or
    scan: throughput (two samples), slowlog and keys per area.
    """
    now = time.time()
    snapshot: dict = {
        "checked_at": _iso(now),
        "ok": False,
        "error": None,
        "failing_since": None,
        "last_ok": None,
        "transport": None,
        "target": None,
        "unavailable": [],
        "warnings": [],
    }
    if not settings.RESILIENCE_REDIS_ENABLED and settings.RESILIENCE_REDIS_PROTOCOL != "rest":
        snapshot["error"] = "Redis is disabled (REDIS_ENABLE=false)."
        snapshot["transport"] = "disabled"
        return snapshot
    try:
        probe = probe or default_probe()
        target = probe.target
        snapshot.update(transport=probe.transport, target=target)
        pings = [probe.ping_ms() for _ in range(PING_SAMPLES)]
    except Exception as exc:  # an unreachable Redis is what this page exists to report
        target = snapshot["target"] or "redis"
        with _lock:
            _failing_since.setdefault(target, now)
            snapshot.update(
                error=_error_text(exc), failing_since=_iso(_failing_since[target]), last_ok=_iso(_last_ok.get(target))
            )
        return snapshot
    with _lock:
        _failing_since.pop(target, None)
        _last_ok[target] = now
    snapshot.update(ok=True, last_ok=_iso(now))
    snapshot["latency"] = {
        "samples": len(pings),
        "p50_ms": round(statistics.median(pings), 3),
        "max_ms": round(max(pings), 3),
    }
    part = _PartRunner(snapshot)
    snapshot["writes"] = _writes(probe, snapshot["warnings"])
    info = part("info", probe.info) or {}
    config = {name: part(f"config {name}", probe.config, name) for name in ("maxmemory-policy", "maxclients")}
    snapshot["server"] = _server(info, probe, part)
    misconfigured = not_configured_reason(info, target)
    if misconfigured:
        # It answers, but the app cannot use it: say so as loudly as an outage (verdict down).
        snapshot.update(misconfigured=misconfigured, error=misconfigured)
    if isinstance(probe, ClusterProbe):
        snapshot["cluster"] = part("cluster nodes", cluster_overview, probe.client)
        snapshot["warnings"] += (snapshot["cluster"] or {}).get("warnings", [])
    snapshot["memory"] = _memory(info, config["maxmemory-policy"], snapshot["warnings"])
    snapshot["clients"] = {
        "connected": info.get("connected_clients"),
        "blocked": info.get("blocked_clients"),
        "max": _int(config["maxclients"]),
    }
    snapshot["throughput"] = {} if quick else part("throughput", _throughput, probe, info, target) or {}
    snapshot["keys"] = {
        "evicted": info.get("evicted_keys"),
        "expired": info.get("expired_keys"),
        "keyspace": {name: value for name, value in info.items() if name.startswith("db") and isinstance(value, dict)},
    }
    snapshot["persistence"] = _persistence(info, now)
    snapshot["slowlog"] = None if quick else part("slowlog", _slowlog, probe)
    snapshot["areas"] = None if quick else part("keys per area", _areas, probe, target)
    snapshot["pools"] = part("connection pools", probe.pools)
    return snapshot


def _writes(probe: Probe, warnings: list[str]) -> dict:
    """Return whether Redis accepts a write; a refusal is also a warning (degraded, not down)."""
    try:
        refusal = write_refusal(probe.execute)
    except Exception as exc:  # not a refusal (e.g. a provider hiding SET): say so, do not guess
        return {"ok": None, "error": type(exc).__name__, "reason": _error_text(exc)}
    if refusal is None:
        return {"ok": True, "error": None, "reason": None}
    warnings.append(refusal_reason(refusal))
    return {"ok": False, "error": type(refusal).__name__, "reason": refusal_reason(refusal)}


class _PartRunner:
    """Run one probe; on failure record why and return None (rendered as n/a)."""

    def __init__(self, snapshot: dict) -> None:
        self.snapshot = snapshot

    def __call__(self, name: str, func, *args):
        try:
            return func(*args)
        except Exception as exc:  # a hidden or failing command must not hide the rest of the page
            self.snapshot["unavailable"].append({"part": name, "error": _error_text(exc)})
            return None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _server(info: dict, probe: Probe, part: _PartRunner) -> dict:
    role = info.get("role")
    mode = info.get("redis_mode")
    if probe.cluster:
        mode = "cluster"
    elif mode == "standalone" and probe.sentinel_configured:
        mode = "sentinel-managed"
    elif mode == "standalone" and role == "master":
        names = part("client list", probe.client_names)
        if names is None:
            mode = None  # cannot tell whether a Sentinel watches it
        elif any(name.startswith("sentinel-") for name in names):
            # Sentinels name their connections sentinel-<id>-cmd / -pubsub on the primary they monitor.
            mode = "sentinel-managed"
    server = {
        "version": info.get("redis_version"),
        "mode": mode,
        "role": _ROLE_NAMES.get(role, role),
        "uptime_seconds": info.get("uptime_in_seconds"),
        "tls": probe.tls,
        "connected_replicas": info.get("connected_slaves"),
    }
    if role == "slave":
        server["primary"] = {
            "host": info.get("master_host"),
            "port": info.get("master_port"),
            "link_status": info.get("master_link_status"),
        }
    return server


def _memory(info: dict, policy: str | None, warnings: list[str]) -> dict:
    policy = policy or info.get("maxmemory_policy")
    maxmemory = info.get("maxmemory")
    used = info.get("used_memory")
    memory: dict[str, Any] = {
        "used": used,
        "used_human": info.get("used_memory_human"),
        "peak": info.get("used_memory_peak"),
        "peak_human": info.get("used_memory_peak_human"),
        "maxmemory": maxmemory,
        "maxmemory_human": info.get("maxmemory_human"),
        "policy": policy,
        "fragmentation": info.get("mem_fragmentation_ratio"),
        "used_ratio": round(used / maxmemory, 4) if used is not None and maxmemory else None,
        "policy_warning": None,
    }
    if policy and policy.startswith("allkeys-"):
        memory["policy_warning"] = (
            f"maxmemory-policy {policy} can evict sessions, rate-limit counters and breaker state under memory "
            "pressure (users logged out, limits reset). Prefer volatile-lru or noeviction for this Redis."
        )
        warnings.append(memory["policy_warning"])
    if memory["used_ratio"] is not None and memory["used_ratio"] >= 0.9:
        warnings.append(f"Memory is at {memory['used_ratio']:.0%} of maxmemory.")
    return memory


def _stats_sample(info: dict, at: float) -> dict:
    return {
        "at": at,
        "commands": info["total_commands_processed"],
        "hits": info.get("keyspace_hits", 0),
        "misses": info.get("keyspace_misses", 0),
        "run_id": info.get("run_id"),
    }


def _throughput(probe: Probe, info: dict, target: str) -> dict:
    """Return ops/s and hit ratio over the gap between two INFO samples (not lifetime counters)."""
    current = _stats_sample(info, time.monotonic())
    with _lock:
        previous = _previous_sample.get(target)
    if (
        previous is None
        or previous["run_id"] != current["run_id"]
        or current["commands"] < previous["commands"]
        or current["at"] - previous["at"] > SAMPLE_MAX_AGE
    ):
        # First look from this process (or the server restarted): take the second sample now.
        time.sleep(SAMPLE_FIRST_GAP)
        previous, current = current, _stats_sample(probe.info(), time.monotonic())
    elif current["at"] - previous["at"] < SAMPLE_MIN_GAP:
        with _lock:
            return dict(_last_rates.get(target) or {})
    gap = current["at"] - previous["at"]
    hits = current["hits"] - previous["hits"]
    misses = current["misses"] - previous["misses"]
    rates = {
        "interval_seconds": round(gap, 2),
        "ops_per_sec": round((current["commands"] - previous["commands"]) / gap, 1),
        "hits": hits,
        "misses": misses,
        "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None,
    }
    with _lock:
        _previous_sample[target] = current
        _last_rates[target] = rates
    return dict(rates)


def _persistence(info: dict, now: float) -> dict:
    last_save = info.get("rdb_last_save_time")
    return {
        "aof_enabled": bool(info["aof_enabled"]) if "aof_enabled" in info else None,
        "aof_last_write_status": info.get("aof_last_write_status"),
        "rdb_last_save_status": info.get("rdb_last_bgsave_status"),
        "rdb_last_save_at": _iso(last_save) if last_save else None,
        "rdb_last_save_age_seconds": int(now - last_save) if last_save else None,
        "rdb_changes_since_last_save": info.get("rdb_changes_since_last_save"),
    }


def _slowlog(probe: Probe) -> list[dict]:
    entries = sorted(probe.slowlog(SLOWLOG_FETCH), key=lambda e: e["duration"], reverse=True)[:SLOWLOG_TOP]
    return [
        {
            "id": entry["id"],
            "at": _iso(entry["start_time"]),
            "duration_ms": round(entry["duration"] / 1000, 3),
            "command": _redacted_command(entry["args"]),
        }
        for entry in entries
    ]


_CONTAINER_COMMANDS = {"CONFIG", "CLIENT", "SLOWLOG", "OBJECT", "MEMORY", "SCRIPT", "FUNCTION", "CLUSTER", "COMMAND"}


def _redacted_command(args: list[str]) -> str:
    """Return the command and its first key; values are dropped and session keys masked (they are credentials)."""
    if not args:
        return ""
    shown = [args[0].upper()]
    if shown[0] in _CONTAINER_COMMANDS and len(args) > 1:
        shown[0] += " " + args[1].upper()
        args = args[1:]
    if len(args) > 1:
        first = args[1]
        marker = "django.contrib.sessions.cache"
        if marker in first:
            first = first[: first.index(marker) + len(marker)] + "…"
        elif first.startswith(index_key("")) or len(first) > 80:
            first = first[:80] + ("…" if len(first) > 80 else "")
        shown.append(first)
    if len(args) > 2:
        shown.append(f"(+{len(args) - 2} args)")
    return " ".join(shown)


def key_family(name: str) -> str:
    """Return the app area a key belongs to: a FAMILIES key, `other:<segment>` or `foreign`."""
    segment = family_of(name)
    if segment is None:
        return "foreign"
    return segment if segment in FAMILIES else f"other:{segment}"


def _areas(probe: Probe, target: str) -> dict:
    """Count keys per app area in a SCAN sample capped at REDIS_HEALTH_SCAN_SAMPLE keys, cached briefly."""
    with _lock:
        cached = _areas_cache.get(target)
    if cached and time.monotonic() - cached[0] < AREAS_TTL:
        return cached[1]
    cap = settings.RESILIENCE_HEALTH_SCAN_SAMPLE
    counts: dict[str, int] = {}
    sampled, cursor = 0, 0
    while True:
        cursor, keys = probe.scan(cursor, min(SCAN_STEP, cap))
        for name in keys[: cap - sampled]:
            family = key_family(name)
            counts[family] = counts.get(family, 0) + 1
        sampled = min(cap, sampled + len(keys))
        if cursor == 0 or sampled >= cap:
            break
    total = probe.dbsize()
    complete = cursor == 0
    scale = total / sampled if sampled and not complete else 1.0
    order = list(FAMILIES)
    families: list[dict[str, Any]] = [
        {
            "family": family,
            "label": FAMILIES.get(family)
            or (f"Other ({family.split(':', 1)[1]})" if family.startswith("other:") else "Not this app"),
            "sampled": n,
            "estimated": round(n * scale),
            "share": round(n / sampled, 4) if sampled else 0,
        }
        for family, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    families.sort(key=lambda f: (order.index(f["family"]) if f["family"] in order else len(order), -f["sampled"]))
    result = {
        "sampled": sampled,
        "dbsize": total,
        "complete": complete,
        "cap": cap,
        "sampled_at": _iso(time.time()),
        "families": families,
    }
    with _lock:
        _areas_cache[target] = (time.monotonic(), result)
    return result


def health_state_reset() -> None:
    """Forget this process's samples and failure clock (tests use it)."""
    with _lock:
        for store in (_failing_since, _last_ok, _previous_sample, _last_rates, _areas_cache):
            store.clear()


def redis_failure_since(*, failed: bool) -> str | None:
    """Note whether the app's Redis just failed for a page; return since when it has been failing (ISO)."""
    target = "redis-outage"
    with _lock:
        if not failed:
            _failing_since.pop(target, None)
            return None
        return _iso(_failing_since.setdefault(target, time.time()))


def redis_health_verdict(snapshot: dict, *, max_latency_ms: float = 250.0) -> tuple[str, list[str]]:
    """Return ("healthy" | "degraded" | "down", reasons) for a snapshot."""
    if not snapshot["ok"]:
        return "down", [snapshot["error"] or "Redis did not answer PING."]
    if snapshot.get("misconfigured"):
        return "down", [snapshot["misconfigured"]]
    reasons = list(snapshot["warnings"])
    p50 = snapshot.get("latency", {}).get("p50_ms")
    if p50 is not None and p50 > max_latency_ms:
        reasons.append(f"PING takes {p50} ms (median), over {max_latency_ms:g} ms.")
    persistence = snapshot.get("persistence") or {}
    for name in ("rdb_last_save_status", "aof_last_write_status"):
        if persistence.get(name) == "err":
            reasons.append(f"Persistence is failing ({name}=err): check the server's disk and log.")
    primary = (snapshot.get("server") or {}).get("primary")
    if primary and primary.get("link_status") not in (None, "up"):
        reasons.append(f"This replica's link to its primary is {primary['link_status']}.")
    return ("degraded" if reasons else "healthy"), reasons
