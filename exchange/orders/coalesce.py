"""Coalescing of concurrent calls on one event loop into one round trip.

An order-entry process has dozens of orders in flight at once, each wanting the same few round
trips to Redis. Sent one by one, each costs a system call, a parse and a wake-up; here the calls
that arrive while the previous batch is in flight wait for it, then go together. Under no load a
call goes at once (a batch of one), so nothing waits for a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalescer(Generic[Item, Result]):
    """Calls `flush(items)` — which returns one result, or one exception instance, per item —
    for batches of the items submitted with `submit`; one batch in flight at a time."""

    def __init__(self, flush: Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]]):
        self._flush = flush
        self._queue: list[tuple[Item, asyncio.Future]] = []
        self._sender: asyncio.Task | None = None

    async def submit(self, item: Item) -> Result:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_queued())
        result = await future
        if isinstance(result, BaseException):
            raise result
        return result

    async def _send_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await self._flush([item for item, _ in batch])
            except Exception as exc:  # the batch failed as a whole: so did every call in it
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
