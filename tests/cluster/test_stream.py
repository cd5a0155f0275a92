"""The change stream's asyncio client on a cluster: blocking reads reach the master of each stream's slot."""

from __future__ import annotations

import asyncio

import pytest

from resilience.connection import get_async_redis

pytestmark = pytest.mark.cluster_redis


def test_the_change_stream_client_reads_a_stream_on_the_cluster():
    async def round_trip():
        client = get_async_redis()
        try:
            for n in range(20):  # streams in every slot range: each read goes to its own master
                await client.xadd(f"agentapi:stream-probe:{n}", {"n": n})
            replies = [await client.xread({f"agentapi:stream-probe:{n}": "0"}, block=100) for n in range(20)]
        finally:
            await client.aclose()
        return replies

    replies = asyncio.run(round_trip())
    assert all(len(reply) == 1 for reply in replies)
