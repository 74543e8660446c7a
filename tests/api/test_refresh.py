"""The refresh-ahead cache (`GroupedRefresh`) of the order path's reads (token owners, account
standing, instruments), on a fake clock."""

import asyncio

import pytest

from exchange.orders import refresh
from exchange.orders.refresh import GroupedRefresh


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


# --- GroupedRefresh: many keys per read -----------------------------------------------------------


class Loader:
    """A grouped read: records the keys of every call, returns `values[key]` (or raises)."""

    def __init__(self, values: dict) -> None:
        self.values = values
        self.calls: list[dict] = []
        self.error: Exception | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    async def load(self, args: dict) -> dict:
        self.calls.append(dict(args))
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return {key: self.values[key] for key in args if key in self.values}


def test_grouped_keys_asked_for_together_are_read_in_one_call(clock):
    async def scenario():
        loader = Loader({"a": 1, "b": 2, "c": 3})
        cache = GroupedRefresh(1.0, loader.load)
        got = await asyncio.gather(*(cache.get(k, f"arg-{k}") for k in "abcab"))
        assert got == [1, 2, 3, 1, 2]
        assert loader.calls == [{"a": "arg-a", "b": "arg-b", "c": "arg-c"}]
        assert await cache.get("a", "arg-a") == 1  # fresh: no read
        assert len(loader.calls) == 1

    asyncio.run(scenario())


def test_grouped_a_refresh_takes_along_the_keys_in_use_so_they_fall_into_step(clock):
    async def scenario():
        loader = Loader({"a": 1, "b": 2, "idle": 0})
        cache = GroupedRefresh(1.0, loader.load)  # refresh after 0.75 s
        await cache.get("idle", None)
        clock.now += 0.3
        await cache.get("a", None)
        clock.now += 0.3
        await cache.get("b", None)
        assert len(loader.calls) == 3
        for _ in range(6):  # a and b in steady use; idle not asked for again
            clock.now += 0.25
            loader.values.update(a=loader.values["a"] + 10, b=loader.values["b"] + 10)
            await cache.get("a", None)
            await cache.get("b", None)
            for _ in range(3):
                await asyncio.sleep(0)
        reads = loader.calls[3:]
        # After the first refresh, a and b are read together; idle is not read again.
        assert all(set(call) == {"a", "b"} for call in reads[1:]), reads
        assert all("idle" not in call for call in reads)
        assert len(reads) <= 3  # one read per refresh interval for both, not one per key

    asyncio.run(scenario())


def test_grouped_a_key_asked_for_now_and_then_is_taken_along_while_in_use(clock):
    """`in_use_for` longer than `fresh_for`: a key asked for every 2 s (an agent that trades
    less than once a second) is refreshed with the busy key's reads, so it never expires and is
    never read on its own."""

    async def scenario():
        loader = Loader({"busy": 1, "rare": 2})
        cache = GroupedRefresh(1.0, loader.load, in_use_for=10.0)
        await cache.get("busy", None)
        await cache.get("rare", None)
        assert loader.calls == [{"busy": None}, {"rare": None}]
        for step in range(1, 25):  # 6 s: busy every 0.25 s, rare every 2 s
            clock.now += 0.25
            await cache.get("busy", None)
            if step % 8 == 0:
                await cache.get("rare", None)
            for _ in range(3):
                await asyncio.sleep(0)
        reads = loader.calls[2:]
        assert reads and all(set(call) == {"busy", "rare"} for call in reads[1:]), reads
        assert {"rare": None} not in reads  # rare never waited for a read of its own
        assert len(reads) <= 6 / 0.5 + 1

    asyncio.run(scenario())


def test_grouped_a_value_near_expiry_is_served_while_it_is_read_again(clock):
    async def scenario():
        loader = Loader({"k": "v1"})
        cache = GroupedRefresh(1.0, loader.load)
        await cache.get("k", None)
        clock.now += 0.8
        loader.values["k"] = "v2"
        loader.gate.clear()
        got = await asyncio.gather(*(cache.get("k", None) for _ in range(5)))
        assert got == ["v1"] * 5  # nobody waited
        await asyncio.sleep(0)
        assert len(loader.calls) == 2  # one read for all of them
        loader.gate.set()
        for _ in range(3):
            await asyncio.sleep(0)
        assert await cache.get("k", None) == "v2"

    asyncio.run(scenario())


def test_grouped_an_expired_value_is_waited_for_and_a_failure_raises(clock):
    async def scenario():
        loader = Loader({"k": "v1"})
        cache = GroupedRefresh(1.0, loader.load)
        await cache.get("k", None)
        clock.now += 1.0  # expired: a revoked token must not be served
        loader.values["k"] = "v2"
        assert await asyncio.gather(*(cache.get("k", None) for _ in range(3))) == ["v2"] * 3
        assert len(loader.calls) == 2
        clock.now += 1.0
        loader.error = RuntimeError("database restarting")
        with pytest.raises(RuntimeError):
            await cache.get("k", None)
        loader.error = None
        assert await cache.get("k", None) == "v2"  # tried again

    asyncio.run(scenario())


def test_grouped_a_key_the_read_leaves_out_is_an_error_not_a_value(clock):
    """For the account checks a missing verdict must not read as 'no objection'."""

    async def scenario():
        cache = GroupedRefresh(1.0, Loader({"a": None}).load)
        assert await cache.get("a", None) is None
        with pytest.raises(LookupError):
            await cache.get("missing", None)

    asyncio.run(scenario())


def test_grouped_keys_beyond_the_limit_start_the_cache_afresh(clock):
    async def scenario():
        loader = Loader({key: key.upper() for key in "abcd"})
        cache = GroupedRefresh(1.0, loader.load, limit=3)
        for key in "abc":
            await cache.get(key, None)
        assert await cache.get("d", None) == "D"
        assert set(cache.entries) == {"d"}  # unknown keys (bad tokens) never grow it for good

    asyncio.run(scenario())
