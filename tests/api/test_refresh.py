"""The refresh-ahead cache of the order path's reads (token owners, account standing, instruments),
on a fake clock."""

import asyncio

import pytest

from exchange import refresh
from exchange.refresh import RefreshAhead


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(refresh, "time", clock)
    return clock


class Source:
    """A read that counts its calls and returns the current `value` (or raises `error`)."""

    def __init__(self) -> None:
        self.value = "v1"
        self.calls = 0
        self.error: Exception | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    async def read(self) -> str:
        self.calls += 1
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.value


def test_a_fresh_value_is_served_without_reading(clock):
    async def scenario():
        cache, source = RefreshAhead(1.0), Source()
        assert await cache.get("k", source.read) == "v1"
        clock.now += 0.5
        source.value = "v2"
        assert await cache.get("k", source.read) == "v1"
        assert source.calls == 1

    asyncio.run(scenario())


def test_a_value_near_expiry_is_served_while_one_read_refreshes_it(clock):
    async def scenario():
        cache, source = RefreshAhead(1.0), Source()
        await cache.get("k", source.read)
        clock.now += 0.8  # past refresh_after (0.75), before expiry
        source.value = "v2"
        source.gate.clear()  # the refresh is slow
        got = await asyncio.gather(*(cache.get("k", source.read) for _ in range(5)))
        assert got == ["v1"] * 5  # nobody waited
        assert source.calls == 2  # one read for all of them
        source.gate.set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert await cache.get("k", source.read) == "v2"
        assert source.calls == 2

    asyncio.run(scenario())


def test_an_expired_value_is_waited_for_by_every_caller_on_one_read(clock):
    async def scenario():
        cache, source = RefreshAhead(1.0), Source()
        await cache.get("k", source.read)
        clock.now += 1.0  # expired: a revoked token must not be served
        source.value = "v2"
        got = await asyncio.gather(*(cache.get("k", source.read) for _ in range(5)))
        assert got == ["v2"] * 5
        assert source.calls == 2

    asyncio.run(scenario())


def test_a_failed_refresh_is_retried_and_an_expired_one_raises(clock):
    async def scenario():
        cache, source = RefreshAhead(1.0), Source()
        await cache.get("k", source.read)
        clock.now += 0.8
        source.error = RuntimeError("database restarting")
        assert await cache.get("k", source.read) == "v1"  # the background read fails quietly
        await asyncio.sleep(0)
        assert await cache.get("k", source.read) == "v1"  # and is tried again
        await asyncio.sleep(0)
        assert source.calls == 3
        clock.now += 0.5  # expired now
        with pytest.raises(RuntimeError):
            await cache.get("k", source.read)
        source.error = None
        assert await cache.get("k", source.read) == "v1"

    asyncio.run(scenario())


def test_keys_beyond_the_limit_start_the_cache_afresh(clock):
    async def scenario():
        cache, source = RefreshAhead(1.0, limit=3), Source()
        for key in "abc":
            await cache.get(key, source.read)
        await cache.get("d", source.read)
        assert set(cache.entries) == {"d"}

    asyncio.run(scenario())
