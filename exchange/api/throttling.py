"""Order-entry throttling per user, counted in Redis (the cache) so that the limit holds across
every worker process.

A fixed window: one counter per user and window, incremented atomically (INCR, with an expiry, in
one round trip). The rate is the `FLASHBOOK_ORDER_RATE` setting (DRF syntax, "6000/min"; empty to
switch it off), read on every request so that tests can change it.
"""

import asyncio
import functools
import logging
import time
import weakref

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import UserRateThrottle

from exchange.orders import journal
from exchange.orders.coalesce import Coalescer

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


# The counts of many requests in one call: KEYS the window counters (one per request, repeats
# allowed), ARGV[1] their expiry. The same counters as `_window_count`'s, which INCRs and EXPIREs.
_COUNT_ALL = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if counts[i] == 1 then
    redis.call('EXPIRE', key, ARGV[1])
  end
end
return counts
"""


def _counter(ttl: int) -> Coalescer:
    script = journal.aclient().register_script(_COUNT_ALL)

    async def count_all(keys: list[str]) -> list[int]:
        return [int(count) for count in await script(keys=keys, args=[ttl])]

    return Coalescer(count_all)


_counters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def aorder_rate_wait(user_pk: int) -> float | None:
    """`OrderRateThrottle`'s verdict for asyncio callers, on the same counter: None when the
    request may go, else the seconds until the window ends. The counts of concurrent callers go to
    Redis in one round trip."""
    limit = _parsed_rate(settings.FLASHBOOK_ORDER_RATE)
    if limit is None:
        return None
    num_requests, duration = limit
    now = time.time()
    key, window_end = _window_key(user_pk, duration, now)
    ttl = duration + 1
    cache = _default_cache()
    try:
        if isinstance(cache, RedisCache):
            loop = asyncio.get_running_loop()
            counters = _counters.setdefault(loop, {})
            client_ttl = (journal.aclient(), ttl)  # a test may point the loop at another Redis
            counter = counters.get(client_ttl)
            if counter is None:
                counter = counters[client_ttl] = _counter(ttl)
            # `make_key`: the view's key without its check for memcached-unsafe characters (the
            # key is ours: ASCII, no spaces, short), which reads every character of it.
            count = await counter.submit(cache.make_key(key))
        else:
            count = await sync_to_async(_window_count)(key, ttl)
    except Exception:  # Redis down: the gateway answers 503 anyway; do not fail here.
        logger.warning("order throttle: cannot reach Redis", exc_info=True)
        return None
    return None if count <= num_requests else max(0.0, window_end - now)


_cache_handles: dict[int, object] = {}


def _default_cache():
    """The default cache's backend, made once per configuration. `caches["default"]` keeps one per
    thread and per asyncio context — a new backend for every request served on the event loop
    (~6 % of a web worker's CPU per order, for a key prefix)."""
    config = settings.CACHES["default"]
    handle = _cache_handles.get(id(config))
    if handle is None or handle[0] is not config:
        if len(_cache_handles) >= 16:  # configurations that came and went (tests)
            _cache_handles.clear()
        handle = _cache_handles[id(config)] = (config, caches.create_connection("default"))
    return handle[1]


@functools.lru_cache(maxsize=8)
def _parsed_rate(rate: str | None) -> tuple[int, int] | None:
    """(requests, seconds) of a rate as `OrderRateThrottle` reads it; None: no limit."""
    if not rate:
        return None
    return OrderRateThrottle().parse_rate(rate)


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
