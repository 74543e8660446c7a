"""The recorder: the one writer of executions. It projects every symbol's event stream into the
database — orders, fills, trades, positions, cash and realized P&L.

It reads the streams through a consumer group, so several recorders can share the work, and it is
idempotent: each instrument's `RecorderCursor` says up to which sequence number the database
reflects its stream, and it is moved in the same transaction as the writes it covers. An entry at
or below the cursor is a duplicate (acknowledged, not re-applied); an entry beyond the cursor + 1
waits until the one before it has been recorded (another recorder holds it, or held it and died:
then its entries are claimed with XCLAIM once they have been idle long enough). Entries are
acknowledged only after the commit, so a crash loses nothing: the entry is read again.

Every computation rounds the same way event by event (to the 8 places the database stores), so the
database does not depend on how the stream was cut into batches: a recorder killed and restarted
ends where an unbroken one does. Times of trades and fills are the time the engine wrote the event
entry (its stream id), not the time of recording, for the same reason.

What each event does (see `docs/protocol.md`):

* accepted — the order becomes NEW and gets its exchange id. The gateway's order is found by the
  journal's `ref` (its primary key); a NEW written to the journal by another tool (no `ref`) of a
  known account gets an order row here, client order id `engine-{SYMBOL}-{order_id}`.
* rejected NEW — the gateway's order becomes REJECTED with the reason: found by `ref` (for
  MALFORMED even when the account was unreadable), else, when the entry was too broken to carry a
  readable `ref`, by the exchange id the gateway stored on its PENDING order. DUPLICATE_ORDER_ID
  never touches the order that owns the id. Rejected cancels and replaces change nothing.
* trade — a `Trade` row always; for each side whose account exists: a `Fill`, the order's filled
  quantity, average price and status, the position (quantity, average price, realized P&L) and
  cash (the buyer pays price * quantity, the seller receives it). A self-trade (maker and taker of
  one account) is a wash: fills and order progress, but position and cash do not move.
* cancelled — CANCELED (USER, SELF_TRADE, RESET) or EXPIRED (REMAINDER, FOK_UNFILLABLE).
* replaced — new price; quantity = filled + the new remaining quantity.
* status — HALTED / RESUMED set `Instrument.halted`; RESET zeroes the instrument's positions, as
  the engine does (cash and realized P&L stay).

Speed: rows are read with `values_list` and orders, trades, fills, positions and cash written by
`bulk_sql` — on PostgreSQL one statement per table and batch (the ORM's bulk operations cost
several times the database's own work); one
transaction covers up to `batch` stream entries of a symbol and at most `max_events` events, so a
recorder catching up does not hold SQLite's write lock for long. On SQLite, decimal columns keep
15 significant digits (Django stores them as REAL): amounts below 10^7 with 8 places are exact.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import flashbook_engine
import redis
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from exchange import bulk_sql
from exchange.models import (
    Account,
    Fill,
    Instrument,
    Order,
    Position,
    RecorderCursor,
    Trade,
)
from exchange.orders import journal
from exchange.orders.progress import OrderProgress
from exchange.protocol import keys

logger = logging.getLogger("flashbook.recorder")

GROUP = "recorders"
_CLAIM_PAGE = 1000  # pending entries looked at per XPENDING
EIGHT_PLACES = Decimal("0.00000001")
ZERO = Decimal(0)
# How long a recorded order's client order id stays in the journal's index after the commit. The
# gateway looks a client order id up in the database, then in the index (in the append script):
# an index entry dropped between the two would let a retry through, so it outlives any request by
# far; after it, the database answers.
COID_GRACE_S = 60.0
# What the events change of a recorded order (its exchange id is set when its row is written).
_ORDER_FIELDS = [
    "status",
    "reject_reason",
    "filled_quantity",
    "quantity",
    "price",
    "average_fill_price",
    "updated_at",
]


def q8(value: Decimal) -> Decimal:
    """Rounds to the 8 places every money and quantity column stores."""
    return value.quantize(EIGHT_PLACES, rounding=ROUND_HALF_EVEN)


# ----- the arithmetic, one event at a time ---------------------------------------------------


def apply_fill(position, side: str, price: Decimal, qty: Decimal) -> None:
    """Moves a position by one fill. Adding to a position (or opening one) moves the average
    price; reducing it realizes P&L against the average price; going through zero realizes the
    closed part and opens the rest at the fill price. Rounded to 8 places at every step."""
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
        position.average_price = ZERO
    elif (position.quantity > 0) != (held > 0):
        position.average_price = price  # flipped: the rest opened at this price


def next_average_price(average: Decimal | None, filled: Decimal, price: Decimal, qty: Decimal):
    """An order's average fill price after one more fill of `qty` at `price`."""
    return q8(((average or ZERO) * filled + price * qty) / (filled + qty))


def trade_amount(price: Decimal, qty: Decimal) -> Decimal:
    """The cash that changes hands in one trade (the buyer pays it, the seller receives it)."""
    return q8(price * qty)


# ----- one transaction -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry of a symbol's event stream: the events of one engine batch."""

    entry_id: str
    first: int
    last: int
    lines: str

    @property
    def written_at(self) -> datetime:
        """When the engine wrote the entry (the millisecond part of the stream id)."""
        ms = int(self.entry_id.partition("-")[0])
        return datetime.fromtimestamp(ms // 1000, tz=UTC).replace(microsecond=ms % 1000 * 1000)


@dataclass
class RecordResult:
    done: list[str] = field(default_factory=list)  # ids that may be acknowledged
    entries: int = 0  # entries applied by this call
    events: int = 0  # events applied by this call
    trades: int = 0
    duplicates: int = 0  # entries already recorded (a redelivery)
    blocked: bool = False  # stopped at a gap: an earlier entry is not recorded yet


class _Order:
    """An order row, as far as the recorder reads and writes it, and its progress through the
    events of this transaction (plain attributes: model instances cost too much per event)."""

    __slots__ = (
        "account_id",
        "average_fill_price",
        "create",
        "dirty",
        "instrument_id",
        "order_id",
        "pk",
        "price",
        "progress",
        "side",
    )

    def __init__(self, pk, instrument_id, account_id, order_id, side, price, average, progress):
        self.pk = pk
        self.instrument_id = instrument_id
        self.account_id = account_id
        self.order_id = order_id
        self.side = side
        self.price = price
        self.average_fill_price = average
        self.progress = progress
        self.create: tuple | None = None  # the insert-only columns of an order created here
        self.dirty = False


class _Position:
    """A position, as far as the recorder reads and writes it (`apply_fill` moves it)."""

    __slots__ = ("average_price", "pk", "quantity", "realized_pnl")

    def __init__(self, pk, quantity: Decimal, average_price: Decimal, realized_pnl: Decimal):
        self.pk = pk
        self.quantity = quantity
        self.average_price = average_price
        self.realized_pnl = realized_pnl


class _Cash:
    """An account's cash, as far as the recorder reads and writes it."""

    __slots__ = ("cash",)

    def __init__(self, cash: Decimal) -> None:
        self.cash = cash


_ORDER_COLUMNS = (
    "pk",
    "instrument_id",
    "account_id",
    "order_id",
    "side",
    "price",
    "average_fill_price",
    "status",
    "reject_reason",
    "quantity",
    "filled_quantity",
)


class _Projection:
    """The rows one transaction touches, loaded once and saved once."""

    def __init__(self, instrument: Instrument):
        self.instrument = instrument
        self.by_id: dict[int, _Order] = {}  # by exchange order id
        self.records: dict[int, journal.PendingRecord] = {}  # the journal's, by order id
        self.accounts: dict[int, _Cash] = {}  # only accounts that exist
        self.positions: dict[int, _Position] = {}  # by account id
        self.dirty_accounts: set[int] = set()
        self.dirty_positions: set[int] = set()
        self.trades: list[tuple] = []
        self.fills: list[tuple] = []  # (trade seq, _Order, the other columns...)
        self.halted: bool | None = None
        self.recorded: list[journal.PendingRecord] = []  # records whose rows this batch writes

    # --- loading ---

    def load(self, events: list) -> None:
        order_ids: set[int] = set()
        news: dict[int, list[int]] = {}  # account -> ids of NEWs the engine answered
        account_ids: set[int] = set()
        reset = False
        for event in events:
            kind = event.kind
            if kind == "level":
                continue
            if kind == "trade":
                order_ids.add(event.maker_order_id)
                order_ids.add(event.taker_order_id)
                account_ids.add(event.maker_account)
                account_ids.add(event.taker_account)
            elif kind == "accepted":
                order_ids.add(event.order_id)
                account_ids.add(event.account)
                news.setdefault(event.account, []).append(event.order_id)
            elif kind == "rejected":
                if event.command == "new" and event.reason == "DUPLICATE_ORDER_ID":
                    continue  # the id is another order's, which this event does not touch
                if event.command == "new" and event.order_id:
                    order_ids.add(event.order_id)
                    news.setdefault(event.account, []).append(event.order_id)
            elif kind in ("cancelled", "replaced"):
                order_ids.add(event.order_id)
            elif kind == "status" and event.status == "RESET":
                reset = True
        instrument = self.instrument
        # A NEW the engine answers in this batch has no row yet: the engine consumes an id once
        # and the cursor applies an event once, so only the other ids are looked up.
        fresh = {order_id for ids in news.values() for order_id in ids}
        rows = bulk_sql.select_unique(
            Order,
            _ORDER_COLUMNS,
            "order_id",
            sorted(order_ids - fresh),
            instrument_id=instrument.pk,
        )
        for pk, instrument_id, account, order_id, side, price, average, *state in rows:
            status, reason, quantity, filled = state
            progress = OrderProgress(
                order_id=order_id,
                quantity_lots=instrument.qty_to_lots(quantity),
                status=status,
                filled_lots=instrument.qty_to_lots(filled),
                reject_reason=reason,
            )
            order = _Order(pk, instrument_id, account, order_id, side, price, average, progress)
            self.by_id[order_id] = order
        # The journal's records of the NEWs whose rows this batch creates.
        wanted = {account: [i for i in ids if i not in self.by_id] for account, ids in news.items()}
        self.records = journal.pending_by_account(wanted)
        # Accounts are shared by every instrument, so recorders of other symbols may write them
        # at the same time: lock them (in one order, against deadlocks). Everything else this
        # transaction touches belongs to the instrument, serialized by its cursor's lock. The
        # lock is FOR NO KEY UPDATE (only cash changes): other recorders' inserts of orders and
        # fills, whose foreign key checks take KEY SHARE on the account, are not blocked by it.
        # Plain values, not model instances (a tenth of the recorder's CPU went to building them).
        for chunk in bulk_sql.chunks(sorted(account_ids)):
            query = (
                Account.objects.select_for_update(no_key=True).filter(pk__in=chunk).order_by("pk")
            )
            for pk, cash in query.values_list("pk", "cash"):
                self.accounts[pk] = _Cash(cash)
        positions = Position.objects.filter(instrument=instrument)
        if not reset:  # a reset touches every position of the instrument
            positions = positions.filter(account_id__in=list(self.accounts))
        for pk, account_id, *held in positions.values_list(
            "pk", "account_id", "quantity", "average_price", "realized_pnl"
        ):
            self.positions[account_id] = _Position(pk, *held)

    def _position(self, account_id: int) -> _Position:
        position = self.positions.get(account_id)
        if position is None:
            position = self.positions[account_id] = _Position(None, ZERO, ZERO, ZERO)
        return position

    # --- events ---

    def apply(self, events: Iterable, executed_at: datetime) -> int:
        """Applies events in sequence order; returns the number of trades."""
        trades = 0
        for event in events:
            kind = event.kind
            if kind == "level":
                continue
            if kind == "trade":
                self._trade(event, executed_at)
                trades += 1
            elif kind == "accepted":
                self._accepted(event, executed_at)
            elif kind == "rejected":
                if event.command == "new":
                    self._rejected_new(event, executed_at)
                # A refused cancel or replace changes nothing that is stored.
            elif kind in ("cancelled", "replaced"):
                order = self.by_id.get(event.order_id)
                if order is not None and order.account_id == event.account:
                    order.progress.apply(event)
                    order.dirty = True
            elif kind == "status":
                if event.status in ("HALTED", "RESUMED"):
                    self.halted = event.status == "HALTED"
                elif event.status == "RESET":
                    for account_id, position in self.positions.items():
                        position.quantity = ZERO
                        position.average_price = ZERO
                        self.dirty_positions.add(account_id)
        return trades

    def _accepted(self, event, executed_at: datetime) -> None:
        if event.order_id in self.by_id:
            # The engine consumes an id with its first NEW, whatever the outcome, so it never
            # accepts a second NEW with it: this is a database out of step with the streams.
            logger.error(
                "recorder accepted order id already taken symbol=%s seq=%d order_id=%d",
                self.instrument.symbol,
                event.seq,
                event.order_id,
            )
            return
        order = self._from_record(event)
        if order is None:
            if event.account not in self.accounts:
                return  # an account the database does not know: nothing of it is stored
            order = self._from_engine(event, executed_at)
        order.progress.apply(event)
        order.dirty = True

    def _from_record(self, event) -> _Order | None:
        """The row of a NEW the gateway journaled, from the journal's record of it."""
        record = self.records.get(event.order_id)
        if (
            record is None
            or record.symbol != self.instrument.symbol
            or (record.account_id != event.account and event.kind == "accepted")
        ):
            return None
        instrument = self.instrument
        is_limit = record.order_type == "limit"
        order = _Order(
            record.order_id,
            instrument.pk,
            record.account_id,
            record.order_id,
            record.side,
            instrument.ticks_to_price(record.price_ticks) if is_limit else None,
            None,
            OrderProgress(order_id=record.order_id, quantity_lots=record.quantity_lots),
        )
        created = datetime.fromtimestamp(record.created_ms / 1000, UTC)
        order.create = (
            record.client_order_id,
            record.order_type,
            record.time_in_force,
            record.post_only,
            created,
        )
        self.by_id[record.order_id] = order
        self.recorded.append(record)
        return order

    def _from_engine(self, event, executed_at: datetime) -> _Order:
        """The row of an order written to the journal by another tool than the gateway."""
        instrument = self.instrument
        is_limit = event.order_type == "limit"
        progress = OrderProgress(order_id=event.order_id, quantity_lots=event.qty)
        order = _Order(
            None,  # a key from the exchange's id counter, when saved
            instrument.pk,
            event.account,
            event.order_id,
            event.side,
            instrument.ticks_to_price(event.price) if is_limit else None,
            None,
            progress,
        )
        order.create = (
            f"engine-{instrument.symbol}-{event.order_id}",
            event.order_type,
            event.tif,
            event.post_only,
            executed_at,
        )
        self.by_id[event.order_id] = order
        return order

    def _rejected_new(self, event, executed_at: datetime) -> None:
        if event.reason == "DUPLICATE_ORDER_ID" or event.order_id in self.by_id:
            return  # the id is another order's: that order is not touched
        order = self._from_record(event)  # a malformed entry may not have a readable account
        if order is None:
            return  # nothing stored: other tools' rejected orders get no row
        order.progress.apply(event)
        order.dirty = True

    def _trade(self, event, executed_at: datetime) -> None:
        instrument = self.instrument
        price = instrument.ticks_to_price(event.price)
        qty = instrument.lots_to_qty(event.qty)
        taker_side = event.aggressor
        self.trades.append(
            (
                instrument.pk,
                event.seq,
                price,
                qty,
                taker_side,
                event.maker_order_id,
                event.taker_order_id,
                executed_at,
            )
        )
        maker_side = "sell" if taker_side == "buy" else "buy"
        wash = event.maker_account == event.taker_account
        amount = trade_amount(price, qty)
        for role, order_id, account_id, side in (
            (Fill.Role.MAKER, event.maker_order_id, event.maker_account, maker_side),
            (Fill.Role.TAKER, event.taker_order_id, event.taker_account, taker_side),
        ):
            account = self.accounts.get(account_id)
            if account is None:
                continue
            if not wash:
                account.cash = account.cash - amount if side == "buy" else account.cash + amount
                self.dirty_accounts.add(account_id)
                apply_fill(self._position(account_id), side, price, qty)
                self.dirty_positions.add(account_id)
            order = self.by_id.get(order_id)
            if order is None or order.account_id != account_id:
                logger.warning(
                    "recorder fill without order symbol=%s seq=%d order_id=%d account=%d",
                    instrument.symbol,
                    event.seq,
                    order_id,
                    account_id,
                )
                continue
            progress = order.progress
            filled_before = instrument.lots_to_qty(progress.filled_lots)
            order.average_fill_price = next_average_price(
                order.average_fill_price, filled_before, price, qty
            )
            progress.apply(event)
            order.dirty = True
            self.fills.append(
                (event.seq, order, account_id, instrument.pk, role, side, price, qty, executed_at)
            )

    # --- saving ---

    def save(self) -> None:
        instrument = self.instrument
        ops = connection.ops
        now = timezone.now()
        stamp = ops.adapt_datetimefield_value(now)
        times: dict[datetime, object] = {}

        def at(moment: datetime):
            if moment not in times:
                times[moment] = ops.adapt_datetimefield_value(moment)
            return times[moment]

        created, changed = [], []
        for order in self.by_id.values():
            if not order.dirty:
                continue
            progress = order.progress
            if progress.price_ticks is not None:
                order.price = instrument.ticks_to_price(progress.price_ticks)
            values = (
                progress.status,
                progress.reject_reason,
                instrument.lots_to_qty(progress.filled_lots),
                instrument.lots_to_qty(progress.quantity_lots),
                order.price,
                order.average_fill_price,
                stamp,
            )
            if order.create is None:
                changed.append((*values, order.pk))
            else:
                created.append(order)
        if changed:
            changed.sort(key=lambda row: row[-1])  # rows locked in key order
            bulk_sql.update(Order, _ORDER_FIELDS, changed)
        if created:
            self._insert_orders(created, stamp)
        if self.trades:
            bulk_sql.insert(
                Trade,
                [
                    "instrument",
                    "seq",
                    "price",
                    "quantity",
                    "aggressor_side",
                    "maker_order_id",
                    "taker_order_id",
                    "executed_at",
                ],
                [(*trade[:7], at(trade[7])) for trade in self.trades],
            )
        if self.fills:
            first, last = self.trades[0][1], self.trades[-1][1]
            trade_pks = dict(
                Trade.objects.filter(instrument=instrument, seq__gte=first, seq__lte=last)
                .values_list("seq", "pk")
                .iterator()
            )
            bulk_sql.insert(
                Fill,
                [
                    "trade",
                    "order",
                    "account",
                    "instrument",
                    "role",
                    "side",
                    "price",
                    "quantity",
                    "executed_at",
                ],
                [
                    (trade_pks[seq], order.pk, *rest, at(executed_at))
                    for seq, order, *rest, executed_at in self.fills
                ],
            )
        new_positions, positions = [], []
        for account_id in sorted(self.dirty_positions):
            position = self.positions[account_id]
            values = (position.quantity, position.average_price, position.realized_pnl)
            if position.pk is None:
                new_positions.append((account_id, instrument.pk, *values, stamp))
            else:
                positions.append((*values, stamp, position.pk))
        if new_positions:
            fields = ["account", "instrument", "quantity", "average_price", "realized_pnl"]
            bulk_sql.insert(Position, [*fields, "updated_at"], new_positions)
        if positions:
            fields = ["quantity", "average_price", "realized_pnl", "updated_at"]
            bulk_sql.update(Position, fields, positions)
        if self.dirty_accounts:
            # Accounts trade on every symbol: written by several recorders at once.
            cash = [(self.accounts[pk].cash, pk) for pk in self.dirty_accounts]
            bulk_sql.update_in_key_order(Account, ["cash"], cash)
        if self.halted is not None:  # not compared: another recorder may have changed it
            Instrument.objects.filter(pk=instrument.pk).update(halted=self.halted)
            instrument.halted = self.halted

    def _insert_orders(self, orders: list[_Order], stamp) -> None:
        instrument = self.instrument
        keyless = [order for order in orders if order.pk is None]
        if keyless:
            # The gateway's orders have client order ids it checked; other tools' get one here.
            _free_client_order_ids(keyless)
            # Other tools' orders take keys from the exchange's id counter, which the gateway's
            # orders' keys come from: the two never collide.
            if journal.id_floor_needed():
                journal.raise_id_floor(Order.objects.aggregate(top=Max("pk"))["top"] or 0)
            top = journal.client().incrby(keys.id_counter_key(), len(keyless))
            for offset, order in enumerate(keyless):
                order.pk = top - len(keyless) + 1 + offset
        ops = connection.ops
        rows = []
        for order in orders:
            progress = order.progress
            client_order_id, order_type, tif, post_only, created = order.create
            rows.append(
                (
                    order.pk,
                    instrument.pk,
                    order.account_id,
                    order.order_id,
                    client_order_id,
                    order.side,
                    order_type,
                    tif,
                    post_only,
                    order.price,
                    instrument.lots_to_qty(progress.quantity_lots),
                    instrument.lots_to_qty(progress.filled_lots),
                    order.average_fill_price,
                    progress.status,
                    progress.reject_reason,
                    ops.adapt_datetimefield_value(created),
                    stamp,
                )
            )
        bulk_sql.insert(
            Order,
            [
                "id",
                "instrument",
                "account",
                "order_id",
                "client_order_id",
                "side",
                "order_type",
                "time_in_force",
                "post_only",
                "price",
                "quantity",
                "filled_quantity",
                "average_fill_price",
                "status",
                "reject_reason",
                "created_at",
                "updated_at",
            ],
            rows,
        )


def _free_client_order_ids(orders: list[_Order]) -> None:
    """Makes the client order ids of orders created here unique per account, should a client
    already use one (the gateway lets clients choose theirs)."""
    taken = set()
    accounts = {order.account_id for order in orders}
    for chunk in bulk_sql.chunks({order.create[0] for order in orders}):
        taken.update(
            Order.objects.filter(account_id__in=accounts, client_order_id__in=chunk).values_list(
                "account_id", "client_order_id"
            )
        )
    if not taken:
        return
    for order in orders:
        client_order_id, *rest = order.create
        suffix = 1
        while (order.account_id, client_order_id) in taken:
            suffix += 1
            client_order_id = f"{order.create[0]}-{suffix}"
        taken.add((order.account_id, client_order_id))
        order.create = (client_order_id, *rest)


def cursor_position(instrument: Instrument) -> int:
    """The last sequence number of the instrument's stream the database reflects."""
    value = (
        RecorderCursor.objects.filter(instrument=instrument)
        .values_list("last_seq", flat=True)
        .first()
    )
    return value or 0


def record_entries(
    instrument: Instrument, entries: list[StreamEntry], *, max_events: int = 20_000
) -> RecordResult:
    """Applies entries of one symbol's stream (in stream order) in one transaction. Returns the
    ids that may be acknowledged — applied now or already applied — which are always the first
    entries of `entries`: it stops at a gap, and after `max_events` events (the transaction holds
    the database's write lock; a recorder catching up should not keep the gateway waiting)."""
    result = RecordResult()
    if not entries:
        return result
    # Without the write lock first: a redelivery, or a gap, needs no transaction.
    seen = cursor_position(instrument)
    if entries[-1].last <= seen:
        result.done = [entry.entry_id for entry in entries]
        result.duplicates = len(entries)
        _forget_duplicates(entries)
        return result
    if entries[0].first > seen + 1:
        result.blocked = True
        return result
    with transaction.atomic():
        cursor = RecorderCursor.objects.select_for_update().filter(instrument=instrument).first()
        if cursor is None:
            cursor = RecorderCursor.objects.create(instrument=instrument)
        last = cursor.last_seq
        batches = []
        duplicates = []
        for entry in entries:
            if entry.last <= last:
                result.done.append(entry.entry_id)
                result.duplicates += 1
                duplicates.append(entry)
                continue
            if entry.first > last + 1:
                result.blocked = True  # an earlier entry is still with another recorder
                break
            events = flashbook_engine.decode_events(entry.lines)
            if entry.first <= last:
                events = [event for event in events if event.seq > last]
            batches.append((events, entry.written_at))
            last = entry.last
            result.done.append(entry.entry_id)
            result.entries += 1
            result.events += len(events)
            if result.events >= max_events:
                break
        if batches:
            projection = _Projection(instrument)
            projection.load([event for events, _ in batches for event in events])
            for events, written_at in batches:
                result.trades += projection.apply(events, written_at)
            projection.save()
            cursor.last_seq = last
            cursor.save(update_fields=["last_seq", "updated_at"])
            if projection.recorded:
                recorded = projection.recorded
                transaction.on_commit(lambda: _forget_records(recorded))
        if duplicates:
            transaction.on_commit(lambda: _forget_duplicates(duplicates))
    return result


# Records whose client order ids leave the journal's index once `COID_GRACE_S` has passed:
# (when, records), oldest first.
_coid_queue: deque[tuple[float, list[journal.PendingRecord]]] = deque()


def _forget_records(records: list[journal.PendingRecord]) -> None:
    """After the commit that wrote their rows: the journal's records of these orders go (readers
    find the rows now); their client order ids a while later (`COID_GRACE_S`)."""
    try:
        journal.forget_pending(records)
    except redis.RedisError:  # left behind: harmless (a reader prefers the row)
        logger.warning("recorder could not clear %d order records", len(records))
    _coid_queue.append((time.monotonic() + COID_GRACE_S, records))
    forget_due_client_order_ids()


def forget_due_client_order_ids(*, now: float | None = None) -> None:
    now = time.monotonic() if now is None else now
    due = []
    while _coid_queue and _coid_queue[0][0] <= now:
        due += _coid_queue.popleft()[1]
    if due:
        try:
            journal.forget_client_order_ids(due)
        except redis.RedisError:  # left behind: harmless (the order exists: a retry finds it)
            logger.warning("recorder could not clear %d client order ids", len(due))


def _forget_duplicates(entries: list[StreamEntry]) -> None:
    """Entries recorded already (a redelivery): a recorder that died between its commit and
    dropping the records left them behind; drop them now."""
    wanted: dict[int, list[int]] = {}
    for entry in entries:
        for event in flashbook_engine.decode_events(entry.lines):
            if event.kind in ("accepted", "rejected") and event.order_id:
                wanted.setdefault(event.account, []).append(event.order_id)
    if wanted:
        try:
            records = list(journal.pending_by_account(wanted).values())
            journal.forget_pending(records)
        except redis.RedisError:
            return
        _coid_queue.append((time.monotonic() + COID_GRACE_S, records))


# ----- the consumer loop -------------------------------------------------------------------


@dataclass
class RecorderStats:
    entries: int = 0
    events: int = 0
    trades: int = 0
    duplicates: int = 0
    claimed: int = 0
    started: float = field(default_factory=time.monotonic)


def _parse(entry_id: bytes, fields: dict) -> StreamEntry | None:
    if not fields:
        return None  # deleted from the stream after it was delivered
    return StreamEntry(
        entry_id=entry_id.decode(),
        first=int(fields[b"first"]),
        last=int(fields[b"last"]),
        lines=fields.get(b"e", b"").decode(),
    )


_TRANSIENT = (redis.ConnectionError, redis.TimeoutError, OperationalError, InterfaceError)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Recorder:
    """Consumes the event streams of `symbols` (default: every enabled instrument, refreshed
    while running) as one consumer of the shared group."""

    def __init__(
        self,
        symbols: list[str] | None = None,
        *,
        consumer: str | None = None,
        batch: int = 50,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        progress_every: float = 5.0,
        max_events: int = 20_000,
        min_interval_ms: int = 0,
    ):
        self.fixed_symbols = list(symbols) if symbols else None
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.progress_every = progress_every
        self.max_events = max_events
        self.min_interval = min_interval_ms / 1000
        self._last_progress = 0.0
        self.redis = journal.client()
        self.instruments: dict[str, Instrument] = {}
        self.keys: dict[str, str] = {}  # stream key -> symbol
        self.blocked: set[str] = set()  # streams waiting for an earlier entry
        self.stopping = False
        self.stats = RecorderStats()
        self._logged = (time.monotonic(), 0, 0)
        self._next_claim = 0.0
        self._next_refresh = 0.0
        self._groups_ready = False
        self._backlog = False  # the last read filled a batch: more is waiting
        self._load_instruments()

    def stop(self) -> None:
        """Asks the loop to stop after the current transaction."""
        self.stopping = True

    def _load_instruments(self) -> None:
        if self.fixed_symbols is not None:
            query = Instrument.objects.filter(symbol__in=self.fixed_symbols)
        else:
            query = Instrument.objects.filter(enabled=True)
        instruments = {instrument.symbol: instrument for instrument in query}
        if self.fixed_symbols is not None:
            missing = set(self.fixed_symbols) - set(instruments)
            if missing:
                raise ValueError(f"unknown symbols: {', '.join(sorted(missing))}")
        added = set(instruments) - set(self.instruments)
        first_load = not self.instruments
        self.instruments = instruments
        self.keys = {keys.key("evt", symbol): symbol for symbol in instruments}
        for symbol in added:
            RecorderCursor.objects.get_or_create(instrument=instruments[symbol])
        if added:
            self._groups_ready = False
            if not first_load:
                logger.info("recorder symbols added=%s", ",".join(sorted(added)))

    def ensure_groups(self) -> None:
        for key in self.keys:
            try:
                self.redis.xgroup_create(key, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    def run(self, *, until_idle: bool = False) -> RecorderStats:
        """Records until `stop()` (or, with `until_idle`, until every stream is recorded and no
        recorder of the group holds an unacknowledged entry). Transient Redis and database errors
        are logged and retried."""
        logger.info(
            "recorder start consumer=%s group=%s symbols=%s batch=%d",
            self.consumer,
            GROUP,
            ",".join(sorted(self.instruments)) or "-",
            self.batch,
        )
        backoff = 0.1
        while not self.stopping:
            try:
                if self._step(until_idle):
                    break
                backoff = 0.1
            except _TRANSIENT as exc:
                logger.warning("recorder retry error=%r backoff_s=%.1f", exc, backoff)
                connection.close()
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                logger.warning("recorder group missing, recreating error=%r", exc)
                self._groups_ready = False
            self._log_progress()
        self._log_progress(force=True)
        self._leave_group()
        logger.info(
            "recorder stop consumer=%s entries=%d events=%d trades=%d",
            self.consumer,
            self.stats.entries,
            self.stats.events,
            self.stats.trades,
        )
        return self.stats

    def _step(self, until_idle: bool) -> bool:
        """One pass; returns True when `until_idle` is satisfied."""
        now = time.monotonic()
        if self.fixed_symbols is None and now >= self._next_refresh:
            self._load_instruments()
            self._next_refresh = now + 30
        if not self.keys:  # no instrument enabled yet
            time.sleep(self.block_ms / 1000)
            return until_idle
        if not self._groups_ready:
            self.ensure_groups()
        forget_due_client_order_ids(now=now)
        if now >= self._next_claim:
            self._claim_abandoned()
            self._next_claim = now + max(0.1, min(5.0, self.claim_idle_ms / 2000))
        # Under load, entries arrive faster than transactions commit: waiting a moment after a
        # transaction lets the next one take many more of them, for much the same cost. Not when
        # the last read was a full batch: the entries are there already, and a recorder behind
        # catches up at once (it lagged seconds behind the agents runner under
        # `make bench-agents` while it waited).
        pause = self._last_progress + self.min_interval - now
        if pause > 0 and not self._backlog:
            time.sleep(pause)
        self._backlog = False
        # Our own unacknowledged entries first: after a restart, a claim, or a gap we waited on.
        self.blocked.clear()
        progressed = self._consume(list(self.keys), "0", None)
        if self.stopping:
            return False
        open_keys = [key for key in self.keys if key not in self.blocked]
        if open_keys:
            waiting = bool(self.blocked) or progressed
            block = None if waiting else (min(self.block_ms, 200) if until_idle else self.block_ms)
            progressed |= self._consume(open_keys, ">", block)
        if progressed:
            self._last_progress = time.monotonic()
        else:
            if self.blocked:
                time.sleep(0.02)  # another recorder is committing the entry before ours
            elif until_idle and self._group_idle():
                return True
        return False

    def _consume(self, keys: list[str], start: str, block: int | None) -> bool:
        if not keys:
            return False
        reply = self.redis.xreadgroup(
            GROUP, self.consumer, dict.fromkeys(keys, start), count=self.batch, block=block
        )
        progressed = False
        for key, raw_entries in reply or []:
            key = _text(key)
            if len(raw_entries) >= self.batch:
                self._backlog = True
            entries, gone = [], []
            for entry_id, fields in raw_entries:
                entry = _parse(entry_id, fields)
                if entry is None:
                    gone.append(entry_id)
                else:
                    entries.append(entry)
            if gone:
                logger.error(
                    "recorder entries deleted before recording stream=%s ids=%s",
                    key,
                    ",".join(_text(i) for i in gone),
                )
                self.redis.xack(key, GROUP, *gone)
            instrument = self.instruments[self.keys[key]]
            # Everything read is recorded, even when asked to stop meanwhile: entries left
            # unacknowledged would wait `claim_idle_ms` for the next recorder to claim them.
            while entries:
                result = record_entries(instrument, entries, max_events=self.max_events)
                if result.done:
                    self.redis.xack(key, GROUP, *result.done)
                    progressed = True
                self.stats.entries += result.entries
                self.stats.events += result.events
                self.stats.trades += result.trades
                self.stats.duplicates += result.duplicates
                if result.blocked or not result.done:
                    self.blocked.add(key)
                    break
                entries = entries[len(result.done) :]
        return progressed

    def _leave_group(self) -> None:
        """Removes this consumer from the group unless it still holds entries (then the next
        recorder claims them)."""
        try:
            for key in self.keys:
                pending = self.redis.xpending_range(
                    key, GROUP, "-", "+", 1, consumername=self.consumer
                )
                if not pending:
                    self.redis.xgroup_delconsumer(key, GROUP, self.consumer)
        except redis.RedisError as exc:
            logger.warning("recorder could not leave the group error=%r", exc)

    def _group_idle(self) -> bool:
        """Nothing left: no entry of any stream is delivered but unacknowledged."""
        return all(self.redis.xpending(key, GROUP)["pending"] == 0 for key in self.keys)

    def _claim_abandoned(self) -> None:
        """Takes over entries another recorder read but has not acknowledged for
        `claim_idle_ms` (it died, or hangs). Its own are left alone: an entry of ours that waited
        that long (for the entry before it, on a slow machine) is not abandoned, and counting it
        would report a take-over that never happened."""
        for key in self.keys:
            start = "-"
            while True:
                page = self.redis.xpending_range(
                    key, GROUP, start, "+", _CLAIM_PAGE, idle=self.claim_idle_ms
                )
                theirs = [p["message_id"] for p in page if _text(p["consumer"]) != self.consumer]
                if theirs:
                    # XCLAIM checks the idle time again: an entry its owner has just read or
                    # acknowledged stays where it is.
                    claimed = self.redis.xclaim(
                        key, GROUP, self.consumer, self.claim_idle_ms, theirs, justid=True
                    )
                    if claimed:
                        self.stats.claimed += len(claimed)
                        logger.info(
                            "recorder claimed stream=%s entries=%d first=%s",
                            key,
                            len(claimed),
                            _text(claimed[0]),
                        )
                if len(page) < _CLAIM_PAGE:
                    break
                start = "(" + _text(page[-1]["message_id"])

    def _log_progress(self, force: bool = False) -> None:
        now = time.monotonic()
        since, entries, events = self._logged
        elapsed = now - since
        if not force and elapsed < self.progress_every:
            return
        stats = self.stats
        if stats.entries != entries or force:
            logger.info(
                "recorder progress entries=%d events=%d trades=%d duplicates=%d claimed=%d "
                "entries_per_s=%.1f events_per_s=%.1f",
                stats.entries,
                stats.events,
                stats.trades,
                stats.duplicates,
                stats.claimed,
                (stats.entries - entries) / elapsed if elapsed > 0 else 0.0,
                (stats.events - events) / elapsed if elapsed > 0 else 0.0,
            )
        self._logged = (now, stats.entries, stats.events)
