"""Values the event loop reads on every order and may use when a moment old — a token's owner, an
account's standing, an instrument — kept fresh without making an order wait for the database.

The database reads behind them run in a thread (`order_store.read`), and a thread gets the GIL
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

K = TypeVar("K")
V = TypeVar("V")


class RefreshAhead(Generic[K, V]):
    """A cache of (time read, value) by key; `get` returns a value at most `fresh_for` seconds
    old, and refreshes it in the background once it is `refresh_after` old (by default 3/4 of
    `fresh_for`). `entries` may be a dict shared with a synchronous reader of the same values (and
    cleared by whoever knows they changed)."""

    def __init__(
        self,
        fresh_for: float,
        refresh_after: float | None = None,
        *,
        entries: dict[K, tuple[float, V]] | None = None,
        limit: int = 65_536,
    ) -> None:
        self.fresh_for = fresh_for
        self.refresh_after = fresh_for * 0.75 if refresh_after is None else refresh_after
        self.entries: dict[K, tuple[float, V]] = {} if entries is None else entries
        self.limit = limit
        self._reads: dict[K, asyncio.Task] = {}

    async def get(self, key: K, read: Callable[[], Awaitable[V]]) -> V:
        hit = self.entries.get(key)
        if hit is not None:
            age = time.monotonic() - hit[0]
            if age < self.fresh_for:
                if age >= self.refresh_after:
                    self._read(key, read)
                return hit[1]
        # Shielded: a caller that goes away (a client hanging up) does not cancel the read that
        # others may be waiting for too.
        return await asyncio.shield(self._read(key, read))

    def _read(self, key: K, read: Callable[[], Awaitable[V]]) -> asyncio.Task:
        loop = asyncio.get_running_loop()
        task = self._reads.get(key)
        if task is None or task.done() or task.get_loop() is not loop:
            task = self._reads[key] = loop.create_task(self._store(key, read))
            # A refresh nobody waits for may fail (the database restarting): the next `get`
            # tries again; the failure is not an unretrieved exception.
            task.add_done_callback(_retrieve)
        return task

    async def _store(self, key: K, read: Callable[[], Awaitable[V]]) -> V:
        started = time.monotonic()  # the value is at least as new as this
        try:
            value = await read()
        finally:
            if self._reads.get(key) is asyncio.current_task():
                del self._reads[key]
        if len(self.entries) >= self.limit and key not in self.entries:
            self.entries.clear()  # unknown keys (bad tokens, symbols) must not grow it forever
        self.entries[key] = (started, value)
        return value


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()
