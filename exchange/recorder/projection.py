"""One transaction's projection of a symbol's events onto the database's rows: orders, fills,
trades, positions and cash read once, changed in memory event by event, written back together."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Max
from django.utils import timezone

from exchange.models import (
    Account,
    Fill,
    Instrument,
    Order,
    Position,
    Trade,
)
from exchange.orders import journal
from exchange.orders.progress import OrderProgress
from exchange.protocol import keys
from exchange.protocol.decimals import currency_decimals
from exchange.protocol.fees import fee_amount
from exchange.recorder import bulk_sql
from exchange.recorder.money import ZERO, money_quantum, next_average_price, settle_fill

logger = logging.getLogger("flashbook.recorder")

_ORDER_FIELDS = [
    "status",
    "reject_reason",
    "filled_quantity",
    "quantity",
    "price",
    "average_fill_price",
    "updated_at",
]


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

    __slots__ = ("cost_basis", "fees_paid", "pk", "quantity", "realized_pnl")

    def __init__(
        self,
        pk,
        quantity: Decimal,
        cost_basis: Decimal,
        realized_pnl: Decimal,
        fees_paid: Decimal,
    ):
        self.pk = pk
        self.quantity = quantity
        self.cost_basis = cost_basis
        self.realized_pnl = realized_pnl
        self.fees_paid = fees_paid


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
        self.currency_decimals = currency_decimals()
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
            "pk", "account_id", "quantity", "cost_basis", "realized_pnl", "fees_paid"
        ):
            self.positions[account_id] = _Position(pk, *held)

    def _position(self, account_id: int) -> _Position:
        position = self.positions.get(account_id)
        if position is None:
            position = self.positions[account_id] = _Position(None, ZERO, ZERO, ZERO, ZERO)
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
                        position.cost_basis = ZERO
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
        quantum = money_quantum(instrument.tick_size, instrument.lot_size)
        value = price * qty
        for role, order_id, account_id, side, bps in (
            (Fill.Role.MAKER, event.maker_order_id, event.maker_account, maker_side,
             event.maker_fee_bps),
            (Fill.Role.TAKER, event.taker_order_id, event.taker_account, taker_side,
             event.taker_fee_bps),
        ):  # fmt: skip
            account = self.accounts.get(account_id)
            if account is None:
                continue
            # The rates the engine stamped on the trade: the same fee on every replay.
            fee = fee_amount(value, bps, self.currency_decimals)
            if not wash or fee:
                position = self._position(account_id)
                settle_fill(account, position, side, price, qty, quantum, fee=fee, wash=wash)
                self.dirty_accounts.add(account_id)
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
                (
                    event.seq,
                    order,
                    account_id,
                    instrument.pk,
                    role,
                    side,
                    price,
                    qty,
                    fee,
                    executed_at,
                )
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
                    "fee",
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
            values = (
                position.quantity,
                position.cost_basis,
                position.realized_pnl,
                position.fees_paid,
            )
            if position.pk is None:
                new_positions.append((account_id, instrument.pk, *values, stamp))
            else:
                positions.append((*values, stamp, position.pk))
        if new_positions:
            fields = [
                "account",
                "instrument",
                "quantity",
                "cost_basis",
                "realized_pnl",
                "fees_paid",
            ]
            bulk_sql.insert(Position, [*fields, "updated_at"], new_positions)
        if positions:
            fields = ["quantity", "cost_basis", "realized_pnl", "fees_paid", "updated_at"]
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
