"""WebSocket consumers: thin relays of the bridge's frames (`exchange.live.bridge`) to one browser.

* `MarketConsumer` — `/ws/market/{SYM}/`, open to everyone like the REST market data: a
  snapshot first, then the symbol's frames. It checks the frames' sequence chain (each frame's
  `prev` is the `seq` of the one before); a frame that does not follow on (the channel layer
  dropped some for a slow browser) is answered with a fresh snapshot instead (`resync`). The
  browser may also ask for one: `{"type": "resync"}`.
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
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from exchange.live import bridge
from exchange.protocol.keys import watch_key
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


class _RedisMixin:
    _redis: aioredis.Redis | None = None

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(settings.REDIS_URL)
        return self._redis

    async def close_redis(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


class MarketConsumer(_RedisMixin, AsyncWebsocketConsumer):
    symbol: str
    seq: int = -1  # the seq of the last frame (or snapshot) this browser has

    async def connect(self):
        self.symbol = self.scope["url_route"]["kwargs"]["symbol"]
        if not is_symbol(self.symbol) or not await database_sync_to_async(_instrument_exists)(
            self.symbol
        ):
            await self.close(code=CLOSE_UNKNOWN_SYMBOL)
            return
        self.group = bridge.market_group(self.symbol)
        # Join first, then read the snapshot: every frame is either in it or still to come.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_snapshot(resync=False)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.close_redis()

    async def send_snapshot(self, *, resync: bool) -> None:
        raw = await self.redis.get(bridge.snapshot_key(self.symbol))
        if raw is None:
            snapshot = await database_sync_to_async(_fallback_snapshot)(self.symbol)
        else:
            snapshot = json.loads(raw)
            snapshot["bridge"] = True
        snapshot["resync"] = resync
        self.seq = snapshot["seq"]
        await self.send(text_data=json.dumps(snapshot, separators=(",", ":")))

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data or "")
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "resync":
            await self.send_snapshot(resync=True)

    async def market_frame(self, event):
        if event["prev"] == self.seq:
            self.seq = event["seq"]
            await self.send(text_data=event["text"])
        elif event["seq"] <= self.seq:
            return  # already in the snapshot this browser started from
        else:
            await self.send_snapshot(resync=True)  # a gap: frames were lost on the way


class PrivateConsumer(AsyncWebsocketConsumer):
    """Refuses anonymous users (closes the handshake with CLOSE_UNAUTHENTICATED)."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.joined(user)

    async def joined(self, user) -> None:
        raise NotImplementedError

    async def push_frame(self, event):
        await self.send(text_data=event["text"])


class AccountConsumer(_RedisMixin, PrivateConsumer):
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
        """Tells the bridge that someone follows this account (it skips everyone else's)."""
        await self.redis.zadd(watch_key(), {str(self.account_id): time.time() + 60})

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
