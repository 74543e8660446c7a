"""Calls from the asyncio runner into synchronous Django code (services, selectors, cancel-all),
on a small pool of threads of its own. Orders themselves go through the gateway, which is asyncio
(`gateway.order_submit` and friends) and batches the journal appends of concurrent orders.

Why our own pool rather than `asgiref.sync_to_async`: with `thread_sensitive=True` every call
would share one thread with every other sync_to_async user of the process; with `False`, each call
may land on any thread of a shared default executor, whose Django connections are never closed. A
dedicated pool makes the concurrency explicit (`threads`, one database connection each) and lets
the runner close those connections on exit.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from django.db import connection


class Desk:
    def __init__(self, threads: int = 1):
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="gateway")

    async def call(self, fn, /, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Closes every worker thread's database connection, then the pool."""
        barrier = threading.Barrier(self.threads)

        def close_connection():
            try:
                barrier.wait(timeout=10)  # so that each thread takes exactly one of these
            except threading.BrokenBarrierError:
                pass
            connection.close()

        futures = [self._pool.submit(close_connection) for _ in range(self.threads)]
        for future in futures:
            future.result(timeout=30)
        self._pool.shutdown(wait=True)
