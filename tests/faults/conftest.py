"""Fixtures for the fault-injection suite: one FaultStack (gunicorn + redis-server + PostgreSQL) per module."""

from __future__ import annotations

import pytest

from tests.faults.harness import FaultStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A migrated, seeded database and Redis of this module's own; start app servers with stack.app(**env)."""
    built = FaultStack(tmp_path_factory.mktemp("faults")).start()
    yield built
    built.stop()
