"""Every Redis key of the circuit breakers (docs/redis-keys.md is generated from FAMILIES).

A breaker's state keys are pybreaker's own fields under the breaker's namespace. The
transition log and its de-duplication marks share the hash tag `{cb}`, so the script
that records a transition once (`lua/record.lua`) touches one Redis Cluster slot;
transitions are rare, so one slot for them is never hot.
"""

from __future__ import annotations

from resilience.connection import key
from resilience.keyfamily import KeyFamily

FAMILIES = (
    KeyFamily(
        pattern="cb:<breaker name>:pybreaker:state, …:fail_counter, …:success_counter, …:opened_at, …:forced",
        type="strings (pybreaker's Redis storage, one namespace per breaker; `forced` is an operator pin)",
        ttl="none: a breaker's state must outlive quiet periods",
        owner="named breakers",
        purpose="shared breaker state; `breaker_reset` (audited)",
    ),
    KeyFamily(
        pattern="cb:<breaker name>:config",
        type="hash (thresholds, code overrides)",
        ttl="none",
        owner="the breaker registry when a process first builds the breaker",
        purpose="lets every process build a breaker with the same thresholds; removed by hand when retired, or by "
        "`breaker_retire` (with the state keys) when a webhook endpoint and its breaker `webhook.<id>` are deleted",
    ),
    KeyFamily(
        pattern="cb:index",
        type="set of breaker names",
        ttl="none",
        owner="the breaker registry",
        purpose="lists breakers created by any process; removed by hand when a breaker is retired",
    ),
    KeyFamily(
        pattern="cb:{cb}:seen:<breaker name>:<token>",
        type="string (transition de-duplication)",
        ttl="24 h (`DEDUP_SECONDS`)",
        owner="the breaker transition recorder",
        purpose="records each transition once, whichever process notices it first",
    ),
    KeyFamily(
        pattern="cb:{cb}:events",
        type="stream, capped at ~1000 entries (`EVENTS_MAXLEN`)",
        ttl="none (capped, so bounded)",
        owner="breaker transitions",
        purpose="the transition log of the breakers page and the history charts",
    ),
)


def namespace(name: str) -> str:
    """Return the namespace pybreaker's storage puts a breaker's fields under."""
    return key("cb", name)


def storage_keys(name: str, fields: tuple[str, ...]) -> list[str]:
    """Return the keys pybreaker's Redis storage keeps a breaker's `fields` in."""
    return [f"{namespace(name)}:pybreaker:{field}" for field in fields]


def config_key(name: str) -> str:
    """Return the hash holding a breaker's configuration."""
    return key("cb", name, "config")


def registry_key() -> str:
    """Return the set of every breaker's name."""
    return key("cb", "index")


def events_key() -> str:
    """Return the stream of breaker transitions."""
    return key("cb", "{cb}", "events")


def seen_key(name: str, token: str) -> str:
    """Return the mark saying one transition of a breaker was recorded."""
    return key("cb", "{cb}", "seen", name, token)
