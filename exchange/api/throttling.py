"""Order-entry throttling per user, counted in Redis (the cache) so that the limit holds across
every worker process.

A fixed window: one counter per user and window, incremented atomically (INCR, with an expiry, in
one round trip). The rate is the `FLASHBOOK_ORDER_RATE` setting (DRF syntax, "6000/min"; empty to
switch it off), read on every request so that tests can change it.
"""

import logging

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import UserRateThrottle

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
        now = self.timer()
        window = int(now // self.duration)
        self.window_end = (window + 1) * self.duration
        try:
            count = _window_count(f"{self.key}:{window}", self.duration + 1)
        except Exception:  # Redis down: the gateway answers 503 anyway; do not fail here.
            logger.warning("order throttle: cannot reach the cache", exc_info=True)
            return True
        return count <= self.num_requests

    def wait(self):
        return max(0.0, self.window_end - self.timer())
