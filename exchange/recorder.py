"""The recorder: the one writer of executions. It projects every symbol's event stream into the
database — orders, fills, trades, positions, cash and realized P&L.

It reads the streams through a consumer group, so several recorders can share the work, and it is
idempotent: each instrument's `RecorderCursor` says up to which sequence number the database
reflects its stream, and it is moved in the same transaction as the writes it covers. An entry at
or below the cursor is a duplicate (acknowledged, not re-applied); an entry beyond the cursor + 1
waits until the one before it has been recorded (another recorder holds it). Entries are
acknowledged only after the commit, so a crash loses nothing: the entry is read again.

Every computation rounds the same way event by event, so the database does not depend on how the
stream was cut into batches: a recorder killed and restarted ends where an unbroken one does.
"""

import logging
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import flashbook_engine
import redis
from django.db import transaction

from exchange import journal
from exchange.models import (
    Account,
    Fill,
    Instrument,
    Order,
    Position,
    RecorderCursor,
    Trade,
)
from exchange.order_state import OrderProgress

logger = logging.getLogger("flashbook.recorder")

GROUP = "recorders"
EIGHT_PLACES = Decimal("0.00000001")


def q8(value: Decimal) -> Decimal:
    return value.quantize(EIGHT_PLACES, rounding=ROUND_HALF_EVEN)


@dataclass
class StreamEntry:
    entry_id: str
    first: int
    last: int
    lines: str


class _Batch:
    """The rows one transaction touches, loaded once and saved once."""

    def __init__(self, instrument: Instrument):
        self.instrument = instrument
        self.orders: dict[int, Order] = {}  # by exchange order id
        self.progress: dict[int, OrderProgress] = {}
        self.positions: dict[int, Position] = {}  # by account id
        self.accounts: dict[int, Account] = {}
        self.new_orders: list[Order] = []
        self.trades: list[Trade] = []
        self.fills: list[Fill] = []
        self.dirty_orders: set[int] = set()

    def load(self, events) -> None:
        order_ids, refs, account_ids = set(), set(), set()
        for event in events:
            if event.kind == "trade":
                order_ids.update((event.maker_order_id, event.taker_order_id))
                account_ids.update((event.maker_account, event.taker_account))
            elif event.kind in ("accepted", "rejected", "cancelled", "replaced"):
                order_ids.add(event.order_id)
                if event.kind in ("accepted", "rejected") and event.client_ref:
                    refs.add(event.client_ref)
        found = Order.objects.filter(instrument=self.instrument, order_id__in=order_ids)
        by_ref = Order.objects.filter(instrument=self.instrument, pk__in=refs)
        for order in [*found, *by_ref]:
            if order.order_id is not None:
                self._track(order)
        self.by_ref = {order.pk: order for order in by_ref}
        self.accounts = Account.objects.select_for_update().in_bulk(account_ids)
        for position in Position.objects.filter(
            instrument=self.instrument, account_id__in=account_ids
        ):
            self.positions[position.account_id] = position

    def _track(self, order: Order) -> None:
        instrument = self.instrument
        progress = OrderProgress(
            order_id=order.order_id,
            quantity_lots=instrument.qty_to_lots(order.quantity),
            status=order.status,
            filled_lots=instrument.qty_to_lots(order.filled_quantity),
            reject_reason=order.reject_reason,
        )
        self.orders[order.order_id] = order
        self.progress[order.order_id] = progress

    def order_for(self, event) -> Order | None:
        """The order an accepted/rejected NEW is about: found by exchange id, by the gateway's
        reference, or — for commands written to the journal by other tools — created here."""
        if event.order_id in self.orders:
            return self.orders[event.order_id]
        order = self.by_ref.get(event.client_ref) if event.client_ref else None
        if order is None:
            if event.kind != "accepted" or event.account not in self._known_accounts():
                return None
            instrument = self.instrument
            order = Order(
                instrument=instrument,
                account_id=event.account,
                client_order_id=f"engine-{event.order_id}",
                side=event.side,
                order_type=event.order_type,
                time_in_force=event.tif,
                post_only=event.post_only,
                price=(
                    instrument.ticks_to_price(event.price) if event.order_type == "limit" else None
                ),
                quantity=instrument.lots_to_qty(event.qty),
            )
            self.new_orders.append(order)
        order.order_id = event.order_id
        self._track(order)
        return order

    def _known_accounts(self) -> set[int]:
        if not hasattr(self, "_account_ids"):
            self._account_ids = set(Account.objects.values_list("pk", flat=True))
        return self._account_ids

    def account(self, account_id: int) -> Account | None:
        if account_id not in self.accounts:
            account = Account.objects.select_for_update().filter(pk=account_id).first()
            if account is None:
                return None
            self.accounts[account_id] = account
        return self.accounts[account_id]

    def position(self, account_id: int) -> Position:
        if account_id not in self.positions:
            self.positions[account_id] = Position(account_id=account_id, instrument=self.instrument)
        return self.positions[account_id]


def _apply_fill(position: Position, side: str, price: Decimal, qty: Decimal) -> None:
    """Moves a position by one fill: average price on the way out, realized P&L on the way in."""
    signed = qty if side == "buy" else -qty
    held = position.quantity
    if held == 0 or (held > 0) == (signed > 0):
        total = held + signed
        position.average_price = q8((abs(held) * position.average_price + qty * price) / abs(total))
        position.quantity = total
        return
    closing = min(qty, abs(held))
    direction = 1 if held > 0 else -1
    position.realized_pnl = q8(
        position.realized_pnl + closing * (price - position.average_price) * direction
    )
    position.quantity = held + signed
    if position.quantity == 0:
        position.average_price = Decimal("0")
    elif (position.quantity > 0) != (held > 0):
        position.average_price = price  # flipped: the rest opened at this price


def record_entries(instrument: Instrument, entries: list[StreamEntry]) -> list[str]:
    """Applies entries of one symbol's stream in one transaction and returns the ids that may be
    acknowledged (applied now or already applied). Stops at a gap."""
    done: list[str] = []
    with transaction.atomic():
        cursor, _ = RecorderCursor.objects.select_for_update().get_or_create(instrument=instrument)
        events = []
        for entry in entries:
            if entry.last <= cursor.last_seq:
                done.append(entry.entry_id)
                continue
            if entry.first > cursor.last_seq + 1:
                break  # an earlier entry is still with another recorder
            events.extend(
                e for e in flashbook_engine.decode_events(entry.lines) if e.seq > cursor.last_seq
            )
            cursor.last_seq = entry.last
            done.append(entry.entry_id)
        if events:
            _apply_events(instrument, events)
            cursor.save(update_fields=["last_seq", "updated_at"])
    return done


def _apply_events(instrument: Instrument, events) -> None:
    batch = _Batch(instrument)
    batch.load(events)
    for event in events:
        kind = event.kind
        if kind in ("accepted", "rejected") and event.command in (None, "new"):
            order = batch.order_for(event)
            if order is not None:
                batch.progress[event.order_id].apply(event)
                batch.dirty_orders.add(event.order_id)
        elif kind == "trade":
            _apply_trade(batch, event)
        elif kind in ("cancelled", "replaced", "rejected") and event.order_id in batch.progress:
            batch.progress[event.order_id].apply(event)
            batch.dirty_orders.add(event.order_id)
        elif kind == "status" and event.status in ("HALTED", "RESUMED"):
            Instrument.objects.filter(pk=instrument.pk).update(halted=event.status == "HALTED")
    _save(batch)


def _apply_trade(batch: _Batch, event) -> None:
    instrument = batch.instrument
    price = instrument.ticks_to_price(event.price)
    qty = instrument.lots_to_qty(event.qty)
    executed_at = datetime.now(UTC)
    trade = Trade(
        instrument=instrument,
        seq=event.seq,
        price=price,
        quantity=qty,
        aggressor_side=event.aggressor,
        maker_order_id=event.maker_order_id,
        taker_order_id=event.taker_order_id,
        executed_at=executed_at,
    )
    batch.trades.append(trade)
    taker_side = event.aggressor
    maker_side = "sell" if taker_side == "buy" else "buy"
    for role, order_id, account_id, side in (
        (Fill.Role.MAKER, event.maker_order_id, event.maker_account, maker_side),
        (Fill.Role.TAKER, event.taker_order_id, event.taker_account, taker_side),
    ):
        account = batch.account(account_id)
        if account is None:
            continue
        amount = price * qty
        account.cash = q8(account.cash - amount if side == "buy" else account.cash + amount)
        _apply_fill(batch.position(account_id), side, price, qty)
        order = batch.orders.get(order_id)
        if order is not None:
            progress = batch.progress[order_id]
            previous = progress.filled_lots
            progress.apply(event)
            filled = instrument.lots_to_qty(progress.filled_lots)
            prior = instrument.lots_to_qty(previous)
            average = order.average_fill_price or Decimal("0")
            order.average_fill_price = q8((average * prior + price * qty) / filled)
            batch.dirty_orders.add(order_id)
            batch.fills.append(
                Fill(
                    trade=trade,
                    order=order,
                    account_id=account_id,
                    instrument=instrument,
                    role=role,
                    side=side,
                    price=price,
                    quantity=qty,
                    executed_at=executed_at,
                )
            )


def _save(batch: _Batch) -> None:
    instrument = batch.instrument
    for order_id in batch.dirty_orders:
        order, progress = batch.orders[order_id], batch.progress[order_id]
        order.status = progress.status
        order.reject_reason = progress.reject_reason
        order.filled_quantity = instrument.lots_to_qty(progress.filled_lots)
        order.quantity = instrument.lots_to_qty(progress.quantity_lots)
        if progress.price_ticks is not None:
            order.price = instrument.ticks_to_price(progress.price_ticks)
    Order.objects.bulk_create(batch.new_orders)
    existing = [
        batch.orders[i] for i in batch.dirty_orders if batch.orders[i] not in batch.new_orders
    ]
    Order.objects.bulk_update(
        existing,
        [
            "order_id",
            "status",
            "reject_reason",
            "filled_quantity",
            "quantity",
            "price",
            "average_fill_price",
            "updated_at",
        ],
    )
    Trade.objects.bulk_create(batch.trades)
    Fill.objects.bulk_create(batch.fills)
    for position in batch.positions.values():
        position.save()
    Account.objects.bulk_update(batch.accounts.values(), ["cash"])


# ----- the consumer loop -------------------------------------------------------------------


def _parse(entry_id: bytes, fields: dict) -> StreamEntry:
    return StreamEntry(
        entry_id=entry_id.decode(),
        first=int(fields[b"first"]),
        last=int(fields[b"last"]),
        lines=fields[b"e"].decode(),
    )


class Recorder:
    """Consumes the event streams of `symbols` as one consumer of the shared group."""

    def __init__(self, symbols: list[str], *, consumer: str | None = None, batch: int = 200):
        self.instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
        missing = set(symbols) - set(self.instruments)
        if missing:
            raise ValueError(f"unknown symbols: {', '.join(sorted(missing))}")
        self.keys = {journal.key("evt", symbol): symbol for symbol in symbols}
        self.consumer = consumer or f"{socket.gethostname()}-{id(self):x}"
        self.batch = batch
        self.redis = journal.client()
        self.stopping = False
        self.recorded = 0

    def ensure_groups(self) -> None:
        for key in self.keys:
            try:
                self.redis.xgroup_create(key, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def run(self, *, until_idle: bool = False, block_ms: int = 1000) -> None:
        self.ensure_groups()
        last_claim = 0.0
        while not self.stopping:
            # Our own unacknowledged entries first (a restart, or a gap we waited on).
            progressed = self._consume("0", block_ms=None)
            if time.monotonic() - last_claim > 5:
                self._claim_abandoned()
                last_claim = time.monotonic()
            progressed |= self._consume(">", block_ms=block_ms)
            if until_idle and not progressed and not self._pending():
                return

    def _consume(self, start: str, block_ms: int | None) -> bool:
        streams = dict.fromkeys(self.keys, start)
        reply = self.redis.xreadgroup(
            GROUP, self.consumer, streams, count=self.batch, block=block_ms
        )
        progressed = False
        for key, entries in reply or []:
            key = key.decode()
            entries = [_parse(entry_id, fields) for entry_id, fields in entries if fields]
            if not entries:
                continue
            done = record_entries(self.instruments[self.keys[key]], entries)
            if done:
                self.redis.xack(key, GROUP, *done)
                self.recorded += len(done)
                progressed = True
        return progressed

    def _pending(self) -> bool:
        return any(
            self.redis.xpending_range(key, GROUP, "-", "+", 1, consumername=self.consumer)
            for key in self.keys
        )

    def _claim_abandoned(self, min_idle_ms: int = 30_000) -> None:
        """Takes over entries another recorder read but never acknowledged (it died)."""
        for key in self.keys:
            self.redis.xautoclaim(key, GROUP, self.consumer, min_idle_ms, "0-0", count=1000)
