"""Order-entry throttling per user, counted in Redis (the cache) so that the limit holds across
every worker process.

A fixed window: one counter per user and window, incremented atomically (INCR, with an expiry, in
one round trip). The rate is the `FLASHBOOK_ORDER_RATE` setting (DRF syntax, "6000/min"; empty to
switch it off), read on every request so that tests can change it.
"""

import asyncio
import logging
import time
import weakref

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import UserRateThrottle

from exchange import journal
from exchange.coalesce import Coalescer

logger = logging.getLogger("flashbook.api")


def _window_count(key: str, ttl: int) -> int:
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        full_key = cache.make_and_validate_key(key)
        client = cache._cache.get_client(full_key, write=True)
        pipe = client.pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, ttl)
        return int(pipe.execute()[0])
    # Any other cache backend (not atomic across processes, but correct within one).
    if cache.add(key, 1, ttl):
        return 1
    try:
        return cache.incr(key)
    except ValueError:
        cache.set(key, 1, ttl)
        return 1


def _window_key(user_pk: int, duration: int, now: float) -> tuple[str, float]:
    """The counter's key (as `OrderRateThrottle` names it) and the end of the window."""
    window = int(now // duration)
    return f"throttle_orders_{user_pk}:{window}", (window + 1) * duration


# Several counts in one call: KEYS the window counters (repeats allowed), ARGV[1] their expiry,
# ARGV[i + 1] what to add to KEYS[i]. The same counters as `_window_count`'s (INCR and EXPIRE).
_COUNT_ALL = """
local counts = {}
for i, key in ipairs(KEYS) do
  local added = tonumber(ARGV[i + 1])
  counts[i] = redis.call('INCRBY', key, added)
  if counts[i] == added then
    redis.call('EXPIRE', key, ARGV[1])
  end
end
return counts
"""


class _LoopCounts:
    """One event loop's view of the throttle's Redis counters.

    Counting every order in Redis before admitting it cost a round trip on every order's path
    (and about a tenth of the order-entry benchmark's throughput). Far from the limit, it need not
    wait: an order is admitted at once when the count Redis last gave (at most `FRESH_FOR` old)
    plus this process's admissions not yet sent stays `margin` below the limit; those admissions
    are added to Redis together every `FLUSH_EVERY`. Near the limit — or without a recent count —
    the order waits for its own `INCR`, exactly as before, so the limit holds across processes:
    what it cannot see yet (other processes' orders of the last moments) is what the margin is
    for."""

    FLUSH_EVERY = 0.01
    FRESH_FOR = 0.25

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self.script = journal.aclient().register_script(_COUNT_ALL)
        self.counter: Coalescer[tuple[str, int], int] = Coalescer(self._count_now)
        self.known: dict[str, tuple[int, float]] = {}  # key -> (count Redis gave, when)
        self.unsent: dict[str, int] = {}
        self.sending: dict[str, int] = {}  # the flush in flight
        self.flusher: asyncio.Task | None = None

    async def _count_now(self, items: list[tuple[str, int]]) -> list[int]:
        keys = [key for key, _ in items]
        added = [amount for _, amount in items]
        counts = [int(count) for count in await self.script(keys=keys, args=[self.ttl, *added])]
        now = time.monotonic()
        for key, count in zip(keys, counts, strict=True):
            self.known[key] = (count, now)
        return counts

    async def allows(self, key: str, limit: int) -> bool:
        known = self.known.get(key)
        unsent = self.unsent.get(key, 0)
        margin = max(2, limit // 10)
        if (
            known is not None
            and time.monotonic() - known[1] < self.FRESH_FOR
            and known[0] + unsent + self.sending.get(key, 0) + 1 <= limit - margin
        ):
            self.unsent[key] = unsent + 1
            if self.flusher is None or self.flusher.done():
                self.flusher = asyncio.get_running_loop().create_task(self._flush())
            return True
        # Counted exactly: after this process's admissions in flight, with those not sent yet.
        if self.sending.get(key) and self.flusher is not None:
            await asyncio.shield(self.flusher)
        admitted = self.unsent.pop(key, 0)
        return await self.counter.submit((key, admitted + 1)) <= limit

    async def _flush(self) -> None:
        await asyncio.sleep(self.FLUSH_EVERY)
        unsent = self.sending = self.unsent
        self.unsent = {}
        pipe = journal.aclient().pipeline(transaction=False)
        for key, count in unsent.items():
            pipe.incrby(key, count)
            pipe.expire(key, self.ttl)
        try:
            replies = await pipe.execute()
        except Exception:  # Redis down: those orders are admitted already; nothing to do
            logger.warning("order throttle: cannot reach Redis", exc_info=True)
            return
        finally:
            self.sending = {}
        now = time.monotonic()
        for key, count in zip(unsent, replies[::2], strict=True):
            self.known[key] = (int(count), now)
        if len(self.known) > 4 * len(unsent) + 1024:  # windows and users gone quiet
            self.known = {k: v for k, v in self.known.items() if now - v[1] < self.FRESH_FOR}


_counts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def aorder_rate_allows(user_pk: int) -> bool:
    """`OrderRateThrottle`'s verdict for asyncio callers, on the same counter (see `_LoopCounts`
    for when it waits for Redis). Over the limit, the caller hands the request to the DRF view,
    which answers 429 in the error format."""
    throttle = OrderRateThrottle()
    if throttle.rate is None:
        return True
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        return True  # the view decides (its fallback counter lives in that cache)
    key, _ = _window_key(user_pk, throttle.duration, time.time())
    loop = asyncio.get_running_loop()
    ttl = throttle.duration + 1
    by_client = _counts.setdefault(loop, {})
    counts = by_client.get((journal.aclient(), ttl))
    if counts is None:
        counts = by_client[journal.aclient(), ttl] = _LoopCounts(ttl)
    try:
        return await counts.allows(cache.make_and_validate_key(key), throttle.num_requests)
    except Exception:  # Redis down: the gateway answers 503 anyway; do not fail here.
        logger.warning("order throttle: cannot reach Redis", exc_info=True)
        return True


class OrderRateThrottle(UserRateThrottle):
    """Limits order writes (create, cancel, replace, cancel all) per user; reads are free."""

    scope = "orders"

    def get_rate(self):
        return settings.FLASHBOOK_ORDER_RATE or None

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS or self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        window_key, self.window_end = _window_key(request.user.pk, self.duration, self.timer())
        try:
            count = _window_count(window_key, self.duration + 1)
        except Exception:  # Redis down: the gateway answers 503 anyway; do not fail here.
            logger.warning("order throttle: cannot reach the cache", exc_info=True)
            return True
        return count <= self.num_requests

    def wait(self):
        return max(0.0, self.window_end - self.timer())
