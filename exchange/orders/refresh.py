"""Values the event loop reads on every order and may use when a moment old — a token's owner, an
account's standing, an instrument — kept fresh without making an order wait for the database.

The database reads behind them run in a thread (`sync_to_async`), and a thread gets the GIL
from a busy event loop only every few milliseconds: a read of half a millisecond of work could
take tens of milliseconds, and every order that found its value expired waited for it — the
longest waits of the order-entry benchmark. Here a value is read again *before* it expires: once
it is `refresh_after` old, the next use starts one read for its key in the background and still
gets the value, which is fresh. Only an expired value (a key not used for a while, a key never
seen) is waited for. So a change made elsewhere (a revoked token, a halt) is seen within
`fresh_for` seconds, exactly as with a plain expiring cache, and a key in steady use never makes
anyone wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

A = TypeVar("A")
K = TypeVar("K")
V = TypeVar("V")


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()


class GroupedRefresh(Generic[K, A, V]):
    """A cache of values by key: `get` returns a value at most `fresh_for` seconds old and
    refreshes it in the background once it is `refresh_after` old (by default 3/4 of
    `fresh_for`). Values are read many keys at a time: `load({key: arg})` returns `{key: value}`
    for every key given, in one read (one query for all the accounts, say).

    A read started for one key takes along every other key in use (asked for within `in_use_for`)
    whose value is past half of `refresh_after`, so the keys in steady use fall into step and are
    read together: one read every `refresh_after` seconds for all of them, where one per key would
    cost as many. `arg` is what the loader needs of a key (an account object for its id); the
    latest one given is kept with the value for the reads that take the key along.
    `in_use_for` is `fresh_for` unless given: longer, a key asked for now and then (less often
    than it expires) is kept fresh by the others' reads instead of being read on its own.
    """

    def __init__(
        self,
        fresh_for: float,
        load: Callable[[dict[K, A]], Awaitable[dict[K, V]]],
        *,
        refresh_after: float | None = None,
        limit: int = 65_536,
        in_use_for: float | None = None,
    ) -> None:
        self.fresh_for = fresh_for
        self.in_use_for = fresh_for if in_use_for is None else in_use_for
        self.refresh_after = fresh_for * 0.75 if refresh_after is None else refresh_after
        self.load = load
        self.limit = limit
        self.entries: dict[K, tuple[float, V, A]] = {}
        self._pending: dict[K, A] = {}  # for the next read
        self._reading: dict[K, asyncio.Future] = {}  # in this read or the next
        self._reader: asyncio.Task | None = None
        self._used: dict[K, float] = {}  # when each key was last asked for

    async def get(self, key: K, arg: A) -> V:
        now = time.monotonic()
        self._used[key] = now
        hit = self.entries.get(key)
        if hit is not None:
            age = now - hit[0]
            if age < self.fresh_for:
                if age >= self.refresh_after:
                    self._read(key, arg)
                return hit[1]
        return await asyncio.shield(self._read(key, arg))

    def _read(self, key: K, arg: A) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        if self._reader is not None and self._reader.get_loop() is not loop:
            self._pending, self._reading = {}, {}  # another event loop's (tests run several)
        future = self._reading.get(key)
        if future is not None:
            return future  # pending or being read: one read per key at a time
        future = self._future(key, arg)
        if self._reader is None or self._reader.done() or self._reader.get_loop() is not loop:
            self._reader = loop.create_task(self._read_pending())
        return future

    def _future(self, key: K, arg: A) -> asyncio.Future:
        future = self._reading[key] = asyncio.get_running_loop().create_future()
        # A refresh nobody waits for may fail: the next `get` tries again.
        future.add_done_callback(_retrieve)
        self._pending[key] = arg
        return future

    async def _read_pending(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # the keys asked for in this turn of the loop come along
            started = time.monotonic()  # the values are at least as new as this
            for key, (read_at, _, arg) in self.entries.items():
                if (
                    started - read_at >= self.refresh_after / 2
                    and started - self._used.get(key, 0.0) < self.in_use_for  # in use
                    and key not in self._reading
                ):
                    self._future(key, arg)
            batch, self._pending = self._pending, {}
            try:
                values = await self.load(batch)
            except Exception as exc:  # every key of the read failed; old values stay
                values, failure = {}, exc
            else:
                failure = None
            if len(self.entries) + len(values) > self.limit:
                self.entries.clear()  # unknown keys (bad tokens) must not grow it forever
                self._used.clear()
            for key, arg in batch.items():
                future = self._reading.pop(key)
                if key in values:
                    self.entries[key] = (started, values[key], arg)
                    future.set_result(values[key])
                else:
                    future.set_exception(failure or LookupError(f"the read gave no {key!r}"))
