"""Helpers of the WebSocket tests: connecting as a user, and a symbol's engine output written to
Redis exactly as the engine worker writes it (`docs/protocol.md`), from a real in-process book."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from decimal import Decimal

import flashbook_engine
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from exchange.live.bridge import Bridge
from exchange.models import Instrument
from exchange.protocol import keys
from tests.recorder.support import event_line

ORIGIN = (b"origin", b"http://localhost")


def make_instrument(symbol: str = "ACME") -> Instrument:
    return Instrument.objects.create(
        symbol=symbol,
        name=f"{symbol} Corp.",
        tick_size=Decimal("0.01"),
        lot_size=Decimal("1"),
        min_order_qty=Decimal("1"),
        max_order_qty=Decimal("10000"),
        reference_price=Decimal("100"),
    )


def make_user(username: str, **extra):
    from exchange.services import account_for_user

    user = get_user_model().objects.create_user(username=username, password=None, **extra)
    return user, account_for_user(user)


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def communicator(path: str, user=None, origin=ORIGIN) -> WebsocketCommunicator:
    from flashbook_site.asgi import application

    headers = [origin] if origin else []
    if user is not None:
        headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
    return WebsocketCommunicator(application, path, headers=headers)


async def receive(comm: WebsocketCommunicator, timeout: float = 5) -> dict:
    return json.loads(await comm.receive_from(timeout=timeout))


async def receive_until(comm, predicate, timeout: float = 10) -> tuple[dict, list[dict]]:
    """Frames until one matches; returns it and every frame seen before it."""
    seen = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"no matching frame; saw {[f['type'] for f in seen]}"
        frame = await receive(comm, timeout=left)
        if predicate(frame):
            return frame, seen
        seen.append(frame)


@asynccontextmanager
async def running_bridge():
    bridge = Bridge()
    task = asyncio.create_task(bridge.run())
    await asyncio.wait_for(bridge.ready.wait(), 10)
    try:
        yield bridge
    finally:
        bridge.stop()
        await asyncio.wait_for(task, 10)


class FakeWorker:
    """A real book whose output goes to Redis in the worker's formats: one event-stream entry
    and one market-data message per batch, and the book key."""

    def __init__(self, r, symbol: str = "ACME"):
        self.r = r
        self.symbol = symbol
        self.book = flashbook_engine.OrderBook(symbol)
        self.next_id = 1

    def new(self, account: int, side: str, price: int, qty: int, **extra) -> dict:
        fields = {"t": "new", "id": self.next_id, "acct": account, "side": side, "px": price}
        fields |= {"qty": qty, **extra}
        self.next_id += 1
        return {k: str(v) for k, v in fields.items()}

    def apply(self, *commands: dict, publish: bool = True, write_book: bool = False) -> list:
        events = []
        for command in commands:
            events += self.book.apply_entry(command)
        if not events:
            return events
        lines = [event_line(e) for e in events]
        first, last = events[0].seq, events[-1].seq
        self.r.xadd(
            keys.key("evt", self.symbol),
            {"first": first, "last": last, "jid": "0-1", "e": "".join(x + "\n" for x in lines)},
        )
        if publish:
            public = [x for x in lines if x.split()[1] in "LTS"]
            bid, ask = self.book.bbo().bid or (0, 0), self.book.bbo().ask or (0, 0)
            text = "\n".join(
                [f"M {first} {last}", *public, f"B {last} {bid[0]} {bid[1]} {ask[0]} {ask[1]}"]
            )
            self.r.publish(f"{settings.FLASHBOOK_REDIS_PREFIX}:md:{{{self.symbol}}}", text)
        if write_book:
            self.write_book()
        return events

    def write_book(self) -> None:
        bids, asks = self.book.depth(20)
        self.r.set(
            keys.key("book", self.symbol),
            json.dumps(
                {
                    "symbol": self.symbol,
                    "seq": self.book.seq,
                    "halted": self.book.halted,
                    "ts_ms": 0,
                    "bids": [list(x) for x in bids],
                    "asks": [list(x) for x in asks],
                }
            ),
        )
