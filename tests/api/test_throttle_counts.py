"""The order-entry fast path's throttle counts (`throttling._LoopCounts`) against the real Redis:
no wait far from the limit, an exact count near it, other processes' orders seen."""

import asyncio
import uuid

import pytest

from exchange.api.throttling import _LoopCounts


@pytest.fixture
def key(redis_prefix):
    return f"{redis_prefix}:cache:throttle-test-{uuid.uuid4().hex[:8]}"


def count(redis_client, key) -> int:
    return int(redis_client.get(key) or 0)


def test_far_from_the_limit_orders_are_admitted_at_once_and_counted_soon(redis_client, key):
    async def scenario():
        counts = _LoopCounts(ttl=61)
        assert await counts.allows(key, 100)  # no count known yet: waits for its INCR
        assert count(redis_client, key) == 1
        for _ in range(20):
            assert await counts.allows(key, 100)
        assert count(redis_client, key) == 1  # not sent yet: nobody waited for Redis
        await asyncio.sleep(counts.FLUSH_EVERY * 5)
        assert count(redis_client, key) == 21
        assert redis_client.ttl(key) > 0

    asyncio.run(scenario())


def test_near_the_limit_every_order_waits_for_an_exact_count(redis_client, key):
    async def scenario():
        counts = _LoopCounts(ttl=61)
        verdicts = [await counts.allows(key, 10) for _ in range(12)]
        await asyncio.sleep(counts.FLUSH_EVERY * 5)
        assert verdicts == [True] * 10 + [False] * 2
        assert count(redis_client, key) == 12

    asyncio.run(scenario())


def test_orders_counted_by_another_process_are_seen_near_the_limit(redis_client, key):
    async def scenario():
        counts = _LoopCounts(ttl=61)
        assert await counts.allows(key, 10)
        redis_client.incrby(key, 7)  # the other worker, or the DRF view
        assert await counts.allows(key, 10)  # the count it knows is 1: admitted at once
        await asyncio.sleep(counts.FLUSH_EVERY * 5)  # its flush brings back the count: 9
        assert await counts.allows(key, 10)  # 10: close to the limit, so counted exactly
        assert not await counts.allows(key, 10)
        assert count(redis_client, key) == 11

    asyncio.run(scenario())


def test_an_old_count_is_not_trusted(redis_client, key, monkeypatch):
    async def scenario():
        counts = _LoopCounts(ttl=61)
        monkeypatch.setattr(_LoopCounts, "FRESH_FOR", 0.0)
        for _ in range(5):
            assert await counts.allows(key, 100)
        assert count(redis_client, key) == 5  # each waited for its INCR

    asyncio.run(scenario())
