"""The bridge: the one fan-out from the engine to browsers (`python manage.py run_bridge`).

It reads
* the market data (`{prefix}:md:{SYM}`) of every symbol someone listens to (symbols added later
  are picked up within about a second: `exchange.listing`) and keeps each book
  (`exchange.live.market_state.MarketState`);
* every symbol's event stream (`{prefix}:evt:{SYM}`, plain XREAD — a fan-out needs no consumer
  group) for the private executions of the accounts someone is watching, to fill a gap in
  the market data (pub/sub loses messages across a reconnect; the stream does not), and to keep
  the books nobody listens to;
* the notices and states of other apps' `Relay`s (the agents app's: the simulation's notices on
  `{prefix}:sim` and, once a second while someone looks, the leaderboard);

and pushes frames through the Channels layer to the groups `market.{SYM}`, `account.{id}` and
each relay's (`sim`) (frame formats: `docs/protocol.md`, "WebSocket frames").

Conflation: a book frame is the whole top of the book, so at most one per BOOK_INTERVAL per symbol
is sent, whatever the order rate; trades are batched for at most TRADES_INTERVAL and never
dropped; private executions go out as soon as their stream entry is read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal

import flashbook_engine
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from exchange import redis_clients
from exchange.listing import ListingWatch
from exchange.live.market_state import (
    MarketState,
    Scale,
    count_accepted,
    parse_md,
    private_events,
)
from exchange.protocol.keys import (
    instruments_version_key,
    key,
    symbol_of,
    watch_key,
    watching_key,
)

log = logging.getLogger("flashbook.bridge")

BOOK_INTERVAL = 0.1  # at most ~10 book frames a second per symbol
TRADES_INTERVAL = 0.02  # trades wait at most this long to be batched
TICK = 0.01  # how often pending frames are looked at
STATS_INTERVAL = 1.0
WATCH_INTERVAL = 0.5
RESEED_INTERVAL = 0.25
WATCH_TTL = 60  # seconds an account stays watched after its consumer's last heartbeat
# A market nobody has open, a leaderboard nobody looks at, executions nobody follows: each frame
# still costs a snapshot write and a group send, so with no browser connected the bridge of the
# demo market (`make bench-idle`, ~25 orders/s) used ~10 % of a core. Who listens is looked up
# every WATCH_INTERVAL (the channel layer's group sets); a market without listeners gets its
# frames at most once per UNVIEWED_INTERVAL and no stats frames (the snapshot a newcomer starts
# from is at most that old, and the chain of frames carries on from it) and is kept from the
# event stream rather than from market data (`_market_data`), the leaderboard is not
# computed (a sim socket gets the current one when it connects), and the event streams are read
# at most every UNVIEWED_READ_INTERVAL while no account is watched (they only count orders then).
UNVIEWED_INTERVAL = 1.0
UNVIEWED_TICK = 0.1
UNVIEWED_READ_INTERVAL = 0.5


def snapshot_key(symbol: str) -> str:
    """Where the bridge keeps the state a new market subscriber starts from."""
    return key("ws", symbol)


def market_group(symbol: str) -> str:
    return f"market.{symbol}"


def account_group(account_id: int) -> str:
    return f"account.{account_id}"


@dataclass(frozen=True)
class Relay:
    """Another app's frames, sent to browsers by the bridge (the one fan-out): the messages of the
    Redis pub/sub `channel`, each made a frame by `on_notice` (None: dropped), and, every
    `interval` seconds while someone listens to `group`, the state `poll` reads (in a thread: it
    may use the database; None: nothing to send), sent when it changed. Frames of one relay are
    whole states: their `seq` only orders them. An app registers its relays in its
    `AppConfig.ready` (the agents app: the simulation's notices and leaderboard), so that the
    exchange does not know the apps built on it."""

    group: str
    channel: Callable[[], str] | None = None
    on_notice: Callable[[str], dict | None] | None = None
    poll: Callable[[], dict | None] | None = None
    interval: float = 1.0


_relays: dict[str, Relay] = {}


def register_relay(relay: Relay) -> None:
    """Adds (or replaces) the relay of `relay.group`; bridges started afterwards run it."""
    _relays[relay.group] = relay


def _load_scales() -> dict[str, Scale]:
    from exchange.models import Instrument

    return {
        symbol: Scale(tick, lot)
        for symbol, tick, lot in Instrument.objects.values_list("symbol", "tick_size", "lot_size")
    }


def _recent_trades(symbol: str, scale: Scale, limit: int) -> tuple[list[dict], Decimal]:
    """The last trades recorded (oldest first) and the volume of the last 24 hours, so a bridge
    that starts on a running market does not show an empty tape."""
    from datetime import timedelta

    from django.db.models import Sum
    from django.utils import timezone

    from exchange.models import Trade

    trades = Trade.objects.filter(instrument__symbol=symbol)
    rows = list(trades.order_by("-seq")[:limit])
    since = timezone.now() - timedelta(days=1)
    volume = trades.filter(executed_at__gte=since).aggregate(v=Sum("quantity"))["v"] or Decimal(0)

    return (
        [
            {
                "seq": t.seq,
                "price": scale.price_of(t.price),
                "qty": scale.qty_of(t.quantity),
                "side": t.aggressor_side,
                "time": int(t.executed_at.timestamp() * 1000),
            }
            for t in reversed(rows)
        ],
        volume,
    )


class Bridge:
    def __init__(self, *, redis_url: str | None = None):
        self.redis_url = redis_url or settings.REDIS_URL
        self.layer = get_channel_layer()
        self.markets: dict[str, MarketState] = {}
        self.scales: dict[str, Scale] = {}
        self.watched: set[int] = set()
        self.evt_cursor: dict[str, str] = {}
        self.last_reseed: dict[str, float] = {}
        self.relays = dict(_relays)
        self.relay_seq: dict[str, int] = dict.fromkeys(self.relays, 0)
        self.relay_last: dict[str, str] = {}  # a polled state as last sent, per group
        # The groups someone listens to (None: not known yet, or the layer cannot tell: all).
        self.viewed: set[str] | None = None
        self.md_live: set[str] = set()  # the symbols whose market data is subscribed to
        self.stopping = asyncio.Event()
        self.frames_sent = 0
        self.ready = asyncio.Event()

    # -- sending -------------------------------------------------------------------------------

    async def _send_market(self, state: MarketState, frame: dict) -> None:
        """Stores the new snapshot, then sends the frame: a subscriber that joined the group and
        then read the snapshot either has this frame in the snapshot or receives it."""
        text = json.dumps(frame, separators=(",", ":"))
        await self.redis.set(
            snapshot_key(state.symbol), json.dumps(state.snapshot(), separators=(",", ":"))
        )
        await self.layer.group_send(
            market_group(state.symbol),
            {
                "type": "market.frame",
                "symbol": state.symbol,
                "seq": frame["seq"],
                "prev": frame["prev"],
                "text": text,
            },
        )
        self.frames_sent += 1

    async def _send_relayed(self, group: str, frame: dict) -> None:
        self.relay_seq[group] += 1
        await self._send_text(group, frame | {"seq": self.relay_seq[group]})

    async def _send_text(self, group: str, frame: dict) -> None:
        await self.layer.group_send(
            group, {"type": "push.frame", "text": json.dumps(frame, separators=(",", ":"))}
        )
        self.frames_sent += 1

    # -- instruments and seeding ---------------------------------------------------------------

    async def _refresh_instruments(self) -> None:
        self.scales = await sync_to_async(_load_scales)()
        for symbol, scale in self.scales.items():
            if symbol not in self.markets:
                await self._add_market(symbol, scale)

    async def _add_market(self, symbol: str, scale: Scale) -> None:
        state = MarketState(symbol=symbol, scale=scale)
        raw = await self.redis.get(key("book", symbol))
        state.seed(None if raw is None else json.loads(raw))
        trades, volume = await sync_to_async(_recent_trades)(symbol, scale, 50)
        for trade in trades:
            if trade["seq"] <= state.seq:
                state.trades.append(trade)
        state.volume = volume
        state.last_price = trades[-1]["price"] if trades else None
        state.sent_seq = state.seq
        self.markets[symbol] = state
        # The event stream is read from the entry after the book key's sequence number, so no
        # execution between the key and now is missed; older entries are skipped.
        self.evt_cursor[symbol] = await self._evt_position(symbol, state.seq)
        await self._send_market(state, state.book_frame(time.monotonic()))
        log.info("bridge: %s seeded at seq %d", symbol, state.seq)

    async def _evt_position(self, symbol: str, after_seq: int) -> str:
        """The id of the event-stream entry just before the first one with events > after_seq."""
        stream = key("evt", symbol)
        newest = await self.redis.xrevrange(stream, count=1)
        if not newest:
            return "0-0"
        position = "+"
        while True:
            entries = await self.redis.xrevrange(stream, max=position, count=64)
            if not entries:
                return "0-0"
            for entry_id, fields in entries:
                if int(fields[b"last"]) <= after_seq:
                    return entry_id.decode()
            last_id = entries[-1][0].decode()
            if len(entries) < 64:
                return "0-0"
            position = "(" + last_id

    async def _events_between(self, symbol: str, after: int, before: int) -> list[list[str]] | None:
        """Event lines with after < seq < before, from the event stream; None if it lacks some."""
        stream = key("evt", symbol)
        collected: list[list] = []
        position = "+"
        while True:
            entries = await self.redis.xrevrange(stream, max=position, count=64)
            if not entries:
                return None
            for _entry_id, fields in entries:
                first, last = int(fields[b"first"]), int(fields[b"last"])
                if last <= after:
                    events = [event for part in reversed(collected) for event in part]
                    return [event for event in events if after < event.seq < before]
                if first < before:
                    collected.append(flashbook_engine.decode_events(fields[b"e"].decode()))
            position = "(" + entries[-1][0].decode()

    # -- market data ---------------------------------------------------------------------------

    async def _on_md(self, symbol: str, text: str) -> None:
        state = self.markets.get(symbol)
        if state is None:
            scale = self.scales.get(symbol)
            if scale is None:
                await self._refresh_instruments()
                scale = self.scales.get(symbol)
            if scale is None:
                return  # not an instrument of ours
            if symbol not in self.markets:
                await self._add_market(symbol, scale)
            state = self.markets[symbol]
        message = parse_md(text)
        now_ms = int(time.time() * 1000)
        await self._advance(state, message.first, message.last, message.events, now_ms)

    async def _advance(self, state: MarketState, first: int, last: int, events, now_ms: int):
        """Applies the events `first..last` (of a market-data message or an event-stream
        entry), after the ones before them should some be missing."""
        symbol = state.symbol
        if last <= state.seq:
            return  # already covered by the seed
        if first > state.seq + 1:
            missing = await self._events_between(symbol, state.seq, first)
            if missing is None:
                log.warning(
                    "bridge: %s market data gap %d..%d not in the event stream; re-seeding",
                    symbol,
                    state.seq + 1,
                    first - 1,
                )
                raw = await self.redis.get(key("book", symbol))
                if raw is not None:
                    state.seed(json.loads(raw))
            else:
                log.info("bridge: %s filled a gap of %d events", symbol, first - state.seq)
                state.apply(missing, now_ms, through=first - 1)
        state.apply(events, now_ms, through=last)

    async def _market_data(self) -> None:
        """The market data of the markets someone listens to (all of them while that is not
        known); the others follow the event stream (`_executions`), in bulk twice a second:
        each market-data message cost the bridge more to receive than to apply (redis-py's
        pub/sub), ~1 % of a core for the demo market's ~45 a second."""
        pubsub = self.redis.pubsub()
        notices = {r.channel(): r for r in self.relays.values() if r.channel and r.on_notice}
        if notices:
            await pubsub.subscribe(*notices)
        live = self.md_live
        self.ready.set()
        try:
            while not self.stopping.is_set():
                wanted = {s for s in self.markets if self._is_viewed(market_group(s))}
                if wanted - live:
                    await pubsub.subscribe(*(key("md", s) for s in sorted(wanted - live)))
                if live - wanted:
                    await pubsub.unsubscribe(*(key("md", s) for s in sorted(live - wanted)))
                live.clear()
                live.update(wanted)
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=WATCH_INTERVAL
                )
                if message is None:
                    continue
                channel = message["channel"].decode()
                data = message["data"].decode()
                relay = notices.get(channel)
                if relay is not None:
                    await self._on_notice(relay, data)
                    continue
                await self._on_md(symbol_of(channel, "md"), data)
        finally:
            await pubsub.aclose()

    async def _flusher(self) -> None:
        """Sends what is due: batched trades, conflated book frames, stats once a second."""
        last_stats = time.monotonic()
        while not self.stopping.is_set():
            watched = [self._is_viewed(market_group(symbol)) for symbol in self.markets]
            await asyncio.sleep(TICK if any(watched) else UNVIEWED_TICK)
            now = time.monotonic()
            stats_due = now - last_stats >= STATS_INTERVAL
            if stats_due:
                last_stats = now
            for symbol, state in list(self.markets.items()):
                viewed = self._is_viewed(market_group(symbol))
                if viewed:
                    book_interval, trades_interval = BOOK_INTERVAL, TRADES_INTERVAL
                else:
                    book_interval = trades_interval = UNVIEWED_INTERVAL
                book_due = state.book_dirty and now - state.last_book_sent >= book_interval
                if state.pending_trades and (
                    book_due or stats_due or now - state.last_trades_sent >= trades_interval
                ):
                    await self._send_market(state, state.trades_frame(now))
                if book_due:
                    await self._send_market(state, state.book_frame(now))
                    reseed_due = now - self.last_reseed.get(symbol, 0) > RESEED_INTERVAL
                else:
                    reseed_due = False
                if stats_due and viewed:  # else the stats go with the snapshot of the next frame
                    await self._send_market(state, state.stats_frame())
                if reseed_due and state.needs_reseed():
                    self.last_reseed[symbol] = now
                    raw = await self.redis.get(key("book", symbol))
                    if raw is not None and state.reseed(json.loads(raw)):
                        state.book_dirty = True

    # -- executions ----------------------------------------------------------------------------

    async def _executions(self) -> None:
        reader = redis_clients.aclient(self.redis_url)
        try:
            while not self.stopping.is_set():
                streams = {key("evt", s): self.evt_cursor[s] for s in self.markets}
                if not streams:
                    await asyncio.sleep(0.2)
                    continue
                if not self.watched:
                    # Only the order counts of the stats frames need the entries then.
                    await asyncio.sleep(UNVIEWED_READ_INTERVAL)
                    streams = {key("evt", s): self.evt_cursor[s] for s in self.markets}
                replies = await reader.xread(streams, count=500, block=500)
                for stream, entries in replies or []:
                    symbol = symbol_of(stream, "evt")
                    state = self.markets.get(symbol)
                    if state is None:
                        continue
                    for entry_id, fields in entries:
                        self.evt_cursor[symbol] = entry_id.decode()
                        text = fields[b"e"].decode()
                        state.count_orders(count_accepted(text))
                        events = None
                        last = int(fields[b"last"])
                        # The stream keeps the state of a market nobody listens to, and catches
                        # a listened-to one up on what its market data did not bring: messages
                        # published before the bridge subscribed (a browser just opened the
                        # market) or lost across a reconnect. Only a later message would show
                        # that gap to `_advance`, and a quiet market may send none.
                        if last > state.seq:
                            events = flashbook_engine.decode_events(text)
                            first = int(fields[b"first"])
                            written_ms = int(entry_id.partition(b"-")[0])
                            await self._advance(state, first, last, events, written_ms)
                        if not self.watched:
                            continue
                        if events is None:
                            events = flashbook_engine.decode_events(text)
                        mine = private_events(events, state.scale, self.watched)
                        # The accounts' frames of one entry go out together: one after the other
                        # each waited for its group send's round trips, and with a few dozen
                        # accounts trading (FIX sessions, `make bench-fix`) that wait, not the
                        # CPU, limited the executions the bridge delivered to a few hundred a
                        # second. An account's frames stay in order: entries go one by one.
                        await asyncio.gather(
                            *(
                                self._send_text(
                                    account_group(account_id),
                                    {
                                        "type": "executions",
                                        "symbol": symbol,
                                        "seq": events[-1]["seq"],
                                        "events": events,
                                    },
                                )
                                for account_id, events in mine.items()
                            )
                        )
        finally:
            await reader.aclose()

    async def _watch(self) -> None:
        while not self.stopping.is_set():
            now = time.time()
            members = await self.redis.zrangebyscore(watch_key(), now, "+inf")
            self.watched = {int(m) for m in members}
            # Those registered before `now` are sent their executions from here on: a socket
            # that registers waits for this to answer its subscription.
            await self.redis.set(watching_key(), repr(now), ex=WATCH_TTL)
            await self.redis.zremrangebyscore(watch_key(), 0, now)
            groups = [*self.relays, *(market_group(symbol) for symbol in self.markets)]
            self.viewed = await self._listened(groups)
            await asyncio.sleep(WATCH_INTERVAL)

    def _is_viewed(self, group: str) -> bool:
        return self.viewed is None or group in self.viewed

    async def _listened(self, groups: list[str]) -> set[str] | None:
        """The groups with at least one consumer in them, from the channel layer's own group
        sets (channels_redis: a sorted set of channel names by time joined, members older than
        its `group_expiry` being gone). None when the layer is another kind: every group then
        counts as listened to."""
        layer = self.layer
        group_key = getattr(layer, "_group_key", None)
        expiry = getattr(layer, "group_expiry", None)
        if group_key is None or expiry is None or not hasattr(layer, "consistent_hash"):
            return None
        since = time.time() - expiry
        listened = set()
        for group in groups:
            connection = layer.connection(layer.consistent_hash(group))
            if await connection.zcount(group_key(group), since, "+inf"):
                listened.add(group)
        return listened

    # -- other apps' frames (relays) -------------------------------------------------------------

    async def _on_notice(self, relay: Relay, data: str) -> None:
        try:
            frame = relay.on_notice(data)
        except Exception:  # a malformed notice must not stop the market data
            log.exception("bridge: ignoring a notice on %s: %r", relay.group, data[:200])
            return
        if frame is not None:
            await self._send_relayed(relay.group, frame)

    async def _poll(self, relay: Relay) -> None:
        while not self.stopping.is_set():
            if not self._is_viewed(relay.group):
                # Nobody to send it to; a socket of the group gets the current state as it joins.
                await asyncio.sleep(WATCH_INTERVAL)
                continue
            try:
                frame = await sync_to_async(relay.poll)()
            except Exception:  # a broken query must not stop the market data
                log.exception("bridge: the %s relay's poll failed", relay.group)
                frame = None
            if frame is not None:
                text = json.dumps(frame, default=str, separators=(",", ":"))
                if text != self.relay_last.get(relay.group):
                    self.relay_last[relay.group] = text
                    await self._send_relayed(relay.group, frame)
            await asyncio.sleep(relay.interval)

    async def _instruments(self) -> None:
        """Takes on a newly listed instrument when the listing's counter moves."""
        listing = ListingWatch()
        listing.moved(await self.redis.get(instruments_version_key()))  # as of the start
        while not self.stopping.is_set():
            await asyncio.sleep(listing.interval)
            if listing.moved(await self.redis.get(instruments_version_key())):
                await self._refresh_instruments()

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        # Its XREAD of every symbol's stream spans slots, and its frames go out through the
        # Channels layer, which needs one server (docs/deploy.md, "On a Redis Cluster").
        redis_clients.require_single_server("The bridge", self.redis_url)
        self.redis = redis_clients.aclient(self.redis_url)
        try:
            await self._refresh_instruments()
            tasks = [
                asyncio.create_task(job(), name=job.__name__)
                for job in (
                    self._market_data,
                    self._flusher,
                    self._executions,
                    self._watch,
                    self._instruments,
                )
            ]
            tasks += [
                asyncio.create_task(self._poll(relay), name=f"poll {relay.group}")
                for relay in self.relays.values()
                if relay.poll is not None
            ]
            stop = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
            self.stopping.set()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task
            for task in done:
                if task is not stop and task.exception() is not None:
                    raise task.exception()
        finally:
            await self.redis.aclose()

    def stop(self) -> None:
        self.stopping.set()
