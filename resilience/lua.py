"""The one Lua loader: every script the app sends to Redis is a `Script` registered here.

A script is a `.lua` file next to the code that owns it, optionally preceded by
library files (the limiter's `rate_limit.lua`). Scripts receive every key they touch
through `KEYS` and never build one (docs/redis-keys.md), so on Redis Cluster all of
a call's keys carry one hash tag and land in one slot. `run` sends EVALSHA and falls
back to EVAL when the server lost its scripts (first call, restart, failover);
`run_many` pipelines calls and loads missing scripts once before resending.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import redis

SCRIPTS: dict[str, Script] = {}


class Script:
    """One registered Lua script: its source, its SHA1 and how to send it."""

    def __init__(self, name: str, path: Path, *, include: Sequence[Path] = ()) -> None:
        self.name = name
        self.path = path
        self.include = tuple(include)
        parts = [lib.read_text() for lib in self.include] + [path.read_text()]
        self.source = "\n".join(parts)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()  # noqa: S324 - SHA1 is how Redis names scripts

    def __repr__(self) -> str:
        return f"<Script {self.name} {self.sha[:8]}>"

    def run(self, client, keys: Sequence, args: Sequence = (), *, on_missing: Callable[[], None] | None = None):
        """Run the script with EVALSHA, loading it with EVAL when Redis does not know it."""
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            # The server lost its scripts (first call, restart, failover): `on_missing` lets the
            # owner repair what else a restart may have lost before the script runs again.
            if on_missing is not None:
                on_missing()
            return client.eval(self.source, len(keys), *keys, *args)

    def queue(self, pipe, keys: Sequence, args: Sequence = ()) -> None:
        """Add an EVALSHA of the script to a pipeline (see run_many for the NOSCRIPT retry)."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)


def register(name: str, path: Path, *, include: Sequence[Path] = ()) -> Script:
    """Register the script at `path` under `name` (once per process) and return it."""
    script = SCRIPTS.get(name)
    if script is None:
        script = SCRIPTS[name] = Script(name, Path(path), include=include)
    elif script.path != Path(path):
        raise ValueError(f"Lua script name {name!r} is already registered for {script.path}")
    return script


def run_many(client, calls: Iterable[tuple[Script, Sequence, Sequence]]) -> list:
    """Run (script, keys, args) calls in one pipelined round trip; load missing scripts and resend once."""
    calls = list(calls)
    if len(calls) == 1:
        script, keys, args = calls[0]
        return [script.run(client, keys, args)]
    replies = _send(client, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, redis.exceptions.NoScriptError)]
    if missing:
        # Only the calls Redis refused run again: the others took effect (a hit counted once).
        for script in {calls[i][0].sha: calls[i][0] for i in missing}.values():
            client.script_load(script.source)
        for i, reply in zip(missing, _send(client, [calls[i] for i in missing]), strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _send(client, calls: list) -> list:
    pipe = client.pipeline(transaction=False)
    for script, keys, args in calls:
        script.queue(pipe, keys, args)
    return pipe.execute(raise_on_error=False)
