"""Every Redis key of the session engines (docs/redis-keys.md is generated from FAMILIES).

Session data itself is Django's cache session store in the `sessions` cache alias,
named by django-redis (`KEY_PREFIX` in settings); this module owns the per-user index.
"""

from __future__ import annotations

from resilience.connection import key
from resilience.keyfamily import KeyFamily

FAMILIES = (
    KeyFamily(
        pattern="session:<version>:django.contrib.sessions.cache<session key>",
        type="string",
        ttl="`SESSION_TTL` (default 3600 s), refreshed when the session is saved, never past "
        "`SESSION_MAX_AGE_ABSOLUTE` after sign-in",
        owner="Django cache sessions, alias `sessions` (named by django-redis): every session except staff ones "
        "(staff sessions are rows of the session table, never in Redis)",
        purpose="session data; removed by TTL, logout, `session_revoke` / `sessions_revoke_all`, `cleanup_sessions`",
    ),
    KeyFamily(
        pattern="sessidx:<user id>",
        type="sorted set (session key scored by expiry, ms)",
        ttl="expires with the user's last session",
        owner="session engine `resilience.sessions.backend` (`lua/index_upsert.lua`)",
        purpose="lists and revokes a user's sessions; the engine trims expired members, `cleanup_sessions` "
        "drops expired and orphaned ones",
    ),
)


def index_key(user_id: object) -> str:
    """Return the Redis key of a user's session index."""
    return key("sessidx", user_id)


def index_pattern() -> str:
    """Return the SCAN pattern of every user's session index."""
    return key("sessidx", "*")


def index_user(name: str) -> str:
    """Return the user id a session index key names."""
    return name[len(key("sessidx", "")) :]
