"""WebSocket consumers: thin relays of the bridge's frames (`exchange.live.bridge`) to one browser.

* `MarketConsumer` — `/ws/market/{SYM}/`, open to everyone like the REST market data (no
  Origin needed): a snapshot first, then the symbol's frames (`MarketFeed`, which the WebSocket
  API's market subscriptions use too). The client may ask for a new snapshot:
  `{"type": "resync"}`. An unknown symbol: close 4404.
* `AccountConsumer` — `/ws/account/`, logged-in users only: the user's own executions and order
  updates (the group `account.{id}` of the user's account; nobody else's).

`PrivateConsumer` is the base of every logged-in-only socket, the agents app's `/ws/sim/` too.

Frame formats: `docs/protocol.md`, "WebSocket frames".
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import suppress

import redis.asyncio as aioredis
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import AllowedHostsOriginValidator

from exchange import redis_clients
from exchange.live import bridge
from exchange.protocol.keys import watch_key, watching_key
from exchange.protocol.symbols import is_symbol

CLOSE_UNAUTHENTICATED = 4401
CLOSE_UNKNOWN_SYMBOL = 4404
WATCH_REFRESH = 20  # seconds between an account consumer's heartbeats (bridge.WATCH_TTL)


def _instrument_exists(symbol: str) -> bool:
    from exchange.selectors import instrument_get

    return instrument_get(symbol) is not None


def _fallback_snapshot(symbol: str) -> dict:
    """A snapshot from the engine's book key and the recorded trades, for when no bridge has
    written one (the bridge is down or has not seen the symbol yet)."""
    from exchange.live.market_state import RECENT_TRADES, MarketState, Scale
    from exchange.selectors import book_snapshot, instrument_get

    instrument = instrument_get(symbol)
    scale = Scale(instrument.tick_size, instrument.lot_size)
    state = MarketState(symbol=symbol, scale=scale)
    state.seed(book_snapshot(symbol))
    state.sent_seq = state.seq
    snapshot = state.snapshot()
    snapshot["trades"], volume = bridge._recent_trades(symbol, scale, RECENT_TRADES)
    snapshot["trades"] = [t for t in snapshot["trades"] if t["seq"] <= state.seq]
    snapshot["stats"]["volume"] = scale.qty_of(volume)
    snapshot["bridge"] = False
    return snapshot


class RedisMixin:
    _redis: aioredis.Redis | None = None

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            # The bridge's readers: refused on a cluster with the Channels layer they serve.
            redis_clients.require_single_server("The live WebSockets (Channels)")
            self._redis = redis_clients.aclient()
        return self._redis

    async def close_redis(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


class MarketFeed:
    """One symbol's market data for one socket: a snapshot first, then the bridge's frames of
    the symbol, each checked to follow on from the last (`prev` is the `seq` before it); a frame
    that does not (the channel layer dropped some for a slow client) is answered with a fresh
    snapshot instead (`resync`). Used by the market socket and by the WebSocket API."""

    def __init__(self, symbol: str, redis: aioredis.Redis, send_text) -> None:
        self.symbol = symbol
        self.seq = -1  # the seq of the last frame (or snapshot) sent
        self._redis = redis
        self._send_text = send_text

    @property
    def group(self) -> str:
        return bridge.market_group(self.symbol)

    async def snapshot(self, *, resync: bool) -> None:
        raw = await self._redis.get(bridge.snapshot_key(self.symbol))
        if raw is None:
            snapshot = await database_sync_to_async(_fallback_snapshot)(self.symbol)
        else:
            snapshot = json.loads(raw)
            snapshot["bridge"] = True
        snapshot["resync"] = resync
        self.seq = snapshot["seq"]
        await self._send_text(json.dumps(snapshot, separators=(",", ":")))

    async def frame(self, event) -> None:
        if self.seq < 0:
            return  # no snapshot sent yet: the one to come is read after this frame was written
        if event["prev"] == self.seq:
            self.seq = event["seq"]
            await self._send_text(event["text"])
        elif event["seq"] <= self.seq:
            return  # already in the snapshot this client started from
        else:
            await self.snapshot(resync=True)  # a gap: frames were lost on the way


async def known_symbol(symbol: str) -> bool:
    return is_symbol(symbol) and await database_sync_to_async(_instrument_exists)(symbol)


class MarketConsumer(RedisMixin, AsyncWebsocketConsumer):
    feed: MarketFeed | None = None

    async def connect(self):
        symbol = self.scope["url_route"]["kwargs"]["symbol"]
        # Accepted first, so that the refusal is a close code a client can read (a close before
        # the handshake is answered is an HTTP 403 to the client, whatever the code).
        await self.accept()
        if not await known_symbol(symbol):
            await self.close(code=CLOSE_UNKNOWN_SYMBOL)
            return
        self.feed = MarketFeed(symbol, self.redis, self._send_text)
        # Join first, then read the snapshot: every frame is either in it or still to come.
        await self.channel_layer.group_add(self.feed.group, self.channel_name)
        await self.feed.snapshot(resync=False)

    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def disconnect(self, code):
        if self.feed is not None:
            await self.channel_layer.group_discard(self.feed.group, self.channel_name)
        await self.close_redis()

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data or "")
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "resync" and self.feed:
            await self.feed.snapshot(resync=True)

    async def market_frame(self, event):
        if self.feed is not None:
            await self.feed.frame(event)


def browser_socket(consumer):
    """A socket authenticated by the browser's session cookie: it passes the origin check (the
    page's origin must be one of `ALLOWED_HOSTS`, so another site cannot open it with the
    visitor's cookies) and the session authentication, which gives it `scope["user"]`. Public
    sockets and the token-authenticated WebSocket API carry no cookie's authority and need
    neither: a program sends no Origin header."""
    return AllowedHostsOriginValidator(AuthMiddlewareStack(consumer.as_asgi()))


class PrivateConsumer(AsyncWebsocketConsumer):
    """Refuses anonymous users: accepts, then closes with CLOSE_UNAUTHENTICATED. Mounted with
    `browser_socket`."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.joined(user)

    async def joined(self, user) -> None:
        raise NotImplementedError

    async def push_frame(self, event):
        await self.send(text_data=event["text"])


# How long a socket that registers its account waits for the bridge to have seen it (the bridge
# reads the registrations every `bridge.WATCH_INTERVAL`); with no bridge running it stops waiting.
WATCH_SEEN_TIMEOUT = 2.0


async def watch_account(redis: aioredis.Redis, account_id: int, *, wait: bool = False) -> bool:
    """Tells the bridge that someone follows this account (it skips everyone else's). With
    `wait`, returns once the bridge has read the registration — its executions are sent from then
    on — True, or False when no bridge did within WATCH_SEEN_TIMEOUT."""
    registered = time.time()
    await redis.zadd(watch_key(), {str(account_id): registered + bridge.WATCH_TTL})
    if not wait:
        return True
    deadline = time.monotonic() + WATCH_SEEN_TIMEOUT
    while time.monotonic() < deadline:
        seen = await redis.get(watching_key())
        if seen is not None and float(seen) >= registered:
            return True
        await asyncio.sleep(0.05)
    return False


class AccountConsumer(RedisMixin, PrivateConsumer):
    group: str | None = None
    heartbeat: asyncio.Task | None = None

    async def joined(self, user) -> None:
        from exchange.services import account_for_user

        account = await database_sync_to_async(account_for_user)(user)
        self.account_id = account.pk
        self.group = bridge.account_group(account.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self._watch()
        self.heartbeat = asyncio.create_task(self._heartbeat())
        await self.accept()
        await self.send(text_data=json.dumps({"type": "hello", "account": account.pk, "seq": 0}))

    async def _watch(self) -> None:
        await watch_account(self.redis, self.account_id)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(WATCH_REFRESH)
            await self._watch()

    async def disconnect(self, code):
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            with suppress(asyncio.CancelledError):
                await self.heartbeat
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.close_redis()
