"""Order-entry throttling per user, counted in Redis so that the limit holds across every worker
process — one counter, whichever entry point the order came through.

A fixed window: one counter per user and window (`keys.throttle_key`), incremented with its
expiry in one step by a script. The counts of concurrent requests on one event loop go to Redis in
one call (`Coalescer`); the DRF views (every order write but token order entry, which is served on
the event loop by `order_entry`) ask the same function through `gateway.blocking`. The rate is the
`FLASHBOOK_ORDER_RATE` setting (DRF syntax, "6000/min"; empty to switch it off), read on every
request so that tests can change it.
"""

import asyncio
import functools
import logging
import math
import time
import weakref
from dataclasses import dataclass

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from exchange import redis_clients
from exchange.orders import gateway, journal
from exchange.orders.coalesce import Coalescer
from exchange.protocol.keys import throttle_key

logger = logging.getLogger("flashbook.api")

# The counts of many requests in one call: KEYS the window counters (one per request, repeats
# allowed), ARGV[1] their expiry.
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
    client = journal.aclient()
    script = client.register_script(_COUNT_ALL)

    async def count_all(keys: list[str]) -> list[int]:
        return [int(count) for count in await script(keys=keys, args=[ttl])]

    async def count_by_slot(keys: list[str]) -> list[int]:
        # On a cluster each user's counter is on its own slot, which no script call spans: one
        # call per slot (repeats kept, each counted), concurrently, the counts put back in the
        # requests' order.
        places: dict[int, list[int]] = {}
        for place, name in enumerate(keys):
            places.setdefault(redis_clients.slot(name), []).append(place)
        groups = list(places.values())
        answers = await asyncio.gather(*(count_all([keys[i] for i in group]) for group in groups))
        counts = [0] * len(keys)
        for group, answer in zip(groups, answers, strict=True):
            for place, count in zip(group, answer, strict=True):
                counts[place] = count
        return counts

    return Coalescer(count_by_slot if redis_clients.is_cluster() else count_all)


_counters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class RateCount:
    """Where a user stands in the order-rate window after one more order write."""

    limit: int
    remaining: int
    reset_s: int  # seconds until the window ends
    wait: float | None  # None: this write may go; else the seconds until it could

    def headers(self) -> list[tuple[str, str]]:
        """The `X-RateLimit-*` headers every order write's answer carries (GitHub's names)."""
        return [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset_s)),
        ]


async def aorder_rate_wait(user_pk: int) -> float | None:
    """Counts an order write of this user: None when it may go, else the seconds until the
    window ends."""
    rate = await aorder_rate(user_pk)
    return None if rate is None else rate.wait


async def aorder_rate(user_pk: int) -> RateCount | None:
    """Counts an order write of this user and says where that leaves them (None: no limit is
    set, or Redis cannot be reached — the gateway answers 503 anyway)."""
    limit = _parsed_rate(settings.FLASHBOOK_ORDER_RATE)
    if limit is None:
        return None
    num_requests, duration = limit
    now = time.time()
    window = int(now // duration)
    ttl = duration + 1
    try:
        loop = asyncio.get_running_loop()
        counters = _counters.setdefault(loop, {})
        client_ttl = (journal.aclient(), ttl)  # a test may point the loop at another Redis
        counter = counters.get(client_ttl)
        if counter is None:
            counter = counters[client_ttl] = _counter(ttl)
        count = await counter.submit(throttle_key(user_pk, window))
    except Exception:  # Redis down: the gateway answers 503 anyway; do not fail here.
        logger.warning("order throttle: cannot reach Redis", exc_info=True)
        return None
    left = max(0.0, (window + 1) * duration - now)
    return RateCount(
        limit=num_requests,
        remaining=max(0, num_requests - count),
        reset_s=max(1, math.ceil(left)),
        wait=None if count <= num_requests else left,
    )


_order_rate = gateway.blocking(aorder_rate)

# Where the DRF throttle leaves the count for `RateLimitHeadersMiddleware` (on Django's request).
_RATE_ATTRIBUTE = "flashbook_order_rate"


class RateLimitHeadersMiddleware:
    """Adds the order rate's `X-RateLimit-*` headers to the answer of a throttled order write
    (the DRF views'; token order entry sets its own)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        rate = getattr(request, _RATE_ATTRIBUTE, None)
        if rate is not None:
            for name, value in rate.headers():
                response[name] = value
        return response


@functools.lru_cache(maxsize=8)
def _parsed_rate(rate: str | None) -> tuple[int, int] | None:
    """(requests, seconds) of a rate in DRF's syntax; None: no limit."""
    if not rate:
        return None
    return OrderRateThrottle().parse_rate(rate)


class OrderRateThrottle(SimpleRateThrottle):
    """Limits order writes (create, cancel, replace, cancel all) per user; reads are free. The
    count is `aorder_rate_wait`'s."""

    scope = "orders"

    def __init__(self) -> None:  # the rate is read per request, not once (DRF's default)
        self._wait = 0.0

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS or not request.user.is_authenticated:
            return True
        rate = _order_rate(request.user.pk)
        if rate is None:
            return True
        setattr(request._request, _RATE_ATTRIBUTE, rate)
        self._wait = rate.wait or 0.0
        return rate.wait is None

    def wait(self):
        return self._wait
