"""Read-only queries of the exchange's state."""

import hashlib
import importlib
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import redis
from django.db import connection, transaction
from django.db.models import Count, Max, Min, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour, TruncMinute, TruncSecond

from exchange import redis_clients
from exchange.models import (
    OPEN_STATUSES,
    Account,
    ApiToken,
    Fill,
    Instrument,
    Order,
    OrderAmounts,
    OrderStatus,
    Position,
    Trade,
)
from exchange.orders import journal
from exchange.protocol import keys, queues
from exchange.protocol.decimals import EIGHT_PLACES
from exchange.recorder.money import apply_fill, money_quantum


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """Whether the Rust matching engine's Python extension can be imported, and its version."""

    available: bool
    version: str | None = None
    error: str | None = None


def engine_status_get(*, module_name: str = "flashbook_engine") -> EngineStatus:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return EngineStatus(available=False, error=str(exc) or exc.__class__.__name__)
    version = getattr(module, "__version__", None)
    return EngineStatus(available=True, version=str(version) if version is not None else None)


def instrument_symbols_enabled() -> list[str]:
    """Symbols the engine should serve: every enabled instrument, halted or not."""
    from exchange.models import Instrument

    return list(Instrument.objects.filter(enabled=True).values_list("symbol", flat=True))


def book_snapshot(symbol: str) -> dict | None:
    """The engine's latest L2 book of a symbol (ticks and lots), or None if it never wrote one."""
    try:
        return journal.read_book(symbol)
    except redis.RedisError:
        return None


@dataclass(frozen=True, slots=True)
class QueuePosition:
    """Where a resting order stands in its price level's queue: the quantity and the number of
    orders ahead of it (older orders at its price, which fill first), the level's whole quantity
    and order count (the order included), and the engine's sequence number it reflects."""

    qty_ahead: Decimal
    orders_ahead: int
    level_qty: Decimal
    level_orders: int
    seq: int
    instrument: Instrument


def order_queue_positions(orders) -> dict[int, QueuePosition]:
    """The queue positions of those of `orders` (recorded or pending) that rest among the best
    published levels of their books, by order id: one `MGET` of the engine's queue keys for all of
    them, however many symbols. An order not listed there (not resting, too far back, the engine
    not serving its symbol, Redis down) has none."""
    candidates = [
        o
        for o in orders
        if o.status in OPEN_STATUSES and o.price is not None and o.order_id is not None
    ]
    symbols = sorted({o.instrument.symbol for o in candidates})
    if not symbols:
        return {}
    try:
        texts = redis_clients.mget(
            journal.client(), [keys.key("queue", symbol) for symbol in symbols]
        )
    except redis.RedisError:
        return {}
    by_symbol = {
        symbol: text.decode() if isinstance(text, bytes) else text
        for symbol, text in zip(symbols, texts, strict=True)
        if text is not None
    }
    positions = {}
    for order in candidates:
        text = by_symbol.get(order.instrument.symbol)
        if text is None:
            continue
        instrument = order.instrument
        spot = queues.queue_spot(
            text, order.side, instrument.price_to_ticks(order.price), order.order_id
        )
        if spot is not None:
            positions[order.pk] = QueuePosition(
                qty_ahead=instrument.lots_to_qty(spot.qty_ahead),
                orders_ahead=spot.orders_ahead,
                level_qty=instrument.lots_to_qty(spot.level_qty),
                level_orders=spot.level_orders,
                seq=spot.seq,
                instrument=instrument,
            )
    return positions


def mark_price(instrument) -> Decimal:
    """Where an instrument's positions are valued: the mid of the book, else the last trade,
    else its reference price."""
    from exchange.models import Trade

    book = book_snapshot(instrument.symbol)
    if book and book.get("bids") and book.get("asks"):
        mid_ticks = Decimal(book["bids"][0][0] + book["asks"][0][0]) / 2
        return instrument.tick_size * mid_ticks
    last = Trade.objects.filter(instrument=instrument).order_by("-seq").first()
    if last is not None:
        return last.price
    return instrument.reference_price


def _book_mids(instruments) -> dict[str, Decimal]:
    """The mid of each instrument's book that has both sides, read with one MGET."""
    if not instruments:
        return {}
    try:
        raws = redis_clients.mget(
            journal.client(), [keys.key("book", i.symbol) for i in instruments]
        )
    except redis.RedisError:
        return {}
    mids = {}
    for instrument, raw in zip(instruments, raws, strict=True):
        book = None if raw is None else json.loads(raw)
        if book and book.get("bids") and book.get("asks"):
            mid_ticks = Decimal(book["bids"][0][0] + book["asks"][0][0]) / 2
            mids[instrument.symbol] = instrument.tick_size * mid_ticks
    return mids


def account_equity(account) -> Decimal:
    """Cash plus every position valued at its instrument's mark (as `mark_price`)."""
    return account_equities([account])[account.pk]


def account_equities(accounts) -> dict[int, Decimal]:
    """`account_equity` of several accounts, by id: one query for their positions (plain values:
    the gateway's standing checks read every trading account's each second) and one MGET for the
    books; the last trade is looked up only for an instrument whose book lacks a side."""
    equities = {account.pk: account.cash for account in accounts}
    positions = list(
        Position.objects.filter(account_id__in=list(equities))
        .exclude(quantity=0)
        .values_list("account_id", "instrument_id", "quantity")
    )
    if not positions:
        return equities
    instruments = Instrument.objects.in_bulk({instrument for _, instrument, _ in positions})
    marks = mark_prices(instruments.values())
    for account_id, instrument_id, quantity in positions:
        equities[account_id] += quantity * marks[instruments[instrument_id].symbol]
    return equities


# --- Reads for the REST API and the pages -----------------------------------------------------


BOOK_DEPTH = 20
# Seconds as well as minutes: the agents' market moves in seconds, and a minute chart of a market
# started a minute ago is one candle.
CANDLE_INTERVALS = {
    "5s": 5,
    "15s": 15,
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "1h": 3600,
    "1d": 86400,
}


def instrument_list() -> QuerySet[Instrument]:
    return Instrument.objects.all()


def instrument_get(symbol: str) -> Instrument | None:
    return Instrument.objects.filter(symbol=symbol).first()


@dataclass(frozen=True)
class BookLevels:
    """An L2 book in decimals. `available` is False when the engine never wrote the book key (or
    Redis cannot be read): the book is then empty with `seq` 0."""

    symbol: str
    seq: int
    halted: bool
    available: bool
    updated_at: datetime | None
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    # The limit prices the engine's price band allows now (None: no band, or not published).
    band: tuple[Decimal, Decimal] | None = None
    # Until when the volatility guard pauses the book (None: not paused).
    paused_until: datetime | None = None


def book_levels(instrument: Instrument, *, depth: int = BOOK_DEPTH) -> BookLevels:
    """The engine's latest L2 book of an instrument, best levels first, in decimals."""
    raw = book_snapshot(instrument.symbol)
    if raw is None:
        return BookLevels(
            symbol=instrument.symbol,
            seq=0,
            halted=instrument.halted,
            available=False,
            updated_at=None,
            bids=[],
            asks=[],
        )

    def levels(side) -> list[tuple[Decimal, Decimal]]:
        return [
            (instrument.ticks_to_price(price), instrument.lots_to_qty(qty))
            for price, qty in (side or [])[:depth]
        ]

    ts_ms = raw.get("ts_ms")
    band = raw.get("band")
    paused_ms = raw.get("paused_until")
    return BookLevels(
        symbol=instrument.symbol,
        seq=int(raw.get("seq", 0)),
        halted=bool(raw.get("halted", instrument.halted)),
        available=True,
        updated_at=datetime.fromtimestamp(ts_ms / 1000, UTC) if ts_ms else None,
        bids=levels(raw.get("bids")),
        asks=levels(raw.get("asks")),
        band=None if not band else tuple(instrument.ticks_to_price(p) for p in band),
        paused_until=None if paused_ms is None else datetime.fromtimestamp(paused_ms / 1000, UTC),
    )


def trade_list(instrument: Instrument) -> QuerySet[Trade]:
    return Trade.objects.filter(instrument=instrument).order_by("-seq")


@dataclass(frozen=True)
class Candle:
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int


def _bucket_start(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def trade_candles(instrument: Instrument, *, interval: str, limit: int) -> list[Candle]:
    """OHLCV candles of the last `limit` intervals up to the latest trade, oldest first; intervals
    without trades are left out.

    Portable across SQLite and PostgreSQL: the database groups trades by second, minute, hour or
    day (Trunc*) and finds each group's high, low, volume and first and last sequence numbers;
    Python merges them into 5- and 15-second or -minute candles and one more query reads the open
    and close prices by sequence number."""
    seconds = CANDLE_INTERVALS[interval]
    trades = Trade.objects.filter(instrument=instrument)
    last = trades.order_by("-seq").values_list("executed_at", flat=True).first()
    if last is None:
        return []
    start = _bucket_start(last, seconds) - timedelta(seconds=seconds * (limit - 1))
    if seconds % 86400 == 0:
        trunc = TruncDay
    elif seconds % 3600 == 0:
        trunc = TruncHour
    elif seconds % 60 == 0:
        trunc = TruncMinute
    else:
        trunc = TruncSecond
    rows = (
        trades.filter(executed_at__gte=start)
        .annotate(bucket=trunc("executed_at", tzinfo=UTC))
        .values("bucket")
        .annotate(
            high=Max("price"),
            low=Min("price"),
            volume=Sum("quantity"),
            first_seq=Min("seq"),
            last_seq=Max("seq"),
            count=Count("id"),
        )
        .order_by("bucket")
    )
    merged: dict[datetime, dict] = {}
    for row in rows:
        key = _bucket_start(row["bucket"], seconds)
        candle = merged.get(key)
        if candle is None:
            merged[key] = dict(row)
            continue
        candle["high"] = max(candle["high"], row["high"])
        candle["low"] = min(candle["low"], row["low"])
        candle["volume"] += row["volume"]
        candle["first_seq"] = min(candle["first_seq"], row["first_seq"])
        candle["last_seq"] = max(candle["last_seq"], row["last_seq"])
        candle["count"] += row["count"]
    seqs = {c["first_seq"] for c in merged.values()} | {c["last_seq"] for c in merged.values()}
    prices = dict(trades.filter(seq__in=seqs).values_list("seq", "price"))
    return [
        Candle(
            start=key,
            open=prices[c["first_seq"]],
            high=c["high"],
            low=c["low"],
            close=prices[c["last_seq"]],
            volume=c["volume"].quantize(EIGHT_PLACES),
            trades=c["count"],
        )
        for key, c in sorted(merged.items())
    ]


class PendingOrder(OrderAmounts):
    """An order the journal has and the recorder has not recorded yet, shaped like an `Order`
    for the serializers, the order lists and the gateway's cancel and replace: PENDING, with the
    id its row will have. A plain object, not a model instance, because one is built for every
    order placed over HTTP (a model instance was ~10 % of a web worker's CPU per order)."""

    __slots__ = (
        "account",
        "account_id",
        "average_fill_price",
        "client_order_id",
        "created_at",
        "fill_views",
        "filled_quantity",
        "instrument",
        "order_id",
        "order_type",
        "pk",
        "post_only",
        "price",
        "quantity",
        "reject_reason",
        "side",
        "status",
        "time_in_force",
        "updated_at",
    )

    @property
    def id(self) -> int:
        return self.pk


def order_from_record(
    record: journal.PendingRecord, instrument: Instrument, account=None
) -> PendingOrder:
    """The order of a journal's record, as its owner reads it until the recorder records it."""
    order = PendingOrder()
    order.pk = order.order_id = record.order_id
    order.instrument = instrument
    order.account_id = record.account_id
    order.account = account
    order.client_order_id = record.client_order_id
    order.side = record.side
    order.order_type = record.order_type
    order.time_in_force = record.time_in_force
    order.post_only = record.post_only
    is_limit = record.order_type == "limit"
    order.price = instrument.ticks_to_price(record.price_ticks) if is_limit else None
    order.quantity = instrument.lots_to_qty(record.quantity_lots)
    order.filled_quantity = _ZERO
    order.average_fill_price = None
    order.status = OrderStatus.PENDING
    order.reject_reason = ""
    order.created_at = order.updated_at = datetime.fromtimestamp(record.created_ms / 1000, UTC)
    order.fill_views = []
    return order


_ZERO = Decimal(0)


def _pending(account: Account) -> list[PendingOrder]:
    """The account's orders only the journal has yet (read before the database: one the recorder
    records meanwhile is then found in one or the other, never in neither)."""
    try:
        records = journal.pending_orders(account.pk)
    except redis.RedisError:
        return []  # they appear once recorded
    # A record outlives its row's commit by a moment (the recorder drops it after): the row wins.
    recorded = set(Order.objects.filter(pk__in=list(records)).values_list("pk", flat=True))
    records = {pk: record for pk, record in records.items() if pk not in recorded}
    if not records:
        return []
    symbols = {record.symbol for record in records.values()}
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
    return [
        order_from_record(record, instruments[record.symbol], account)
        for record in records.values()
        if record.symbol in instruments
    ]


@dataclass
class OrderList:
    """An account's orders, newest (highest id) first: the recorded rows (a queryset, for the
    paginator) and those only the journal has yet, merged page by page
    (`IdCursorPagination.paginate_orders`)."""

    recorded: QuerySet[Order]
    pending: list[PendingOrder]


def order_list(
    *,
    account: Account,
    symbol: str | None = None,
    status: str | None = None,
    open_only: bool = False,
) -> OrderList:
    """An account's orders, newest first — those the gateway has acknowledged and the recorder
    not yet recorded included (read-your-writes)."""
    pending = _pending(account)
    orders = Order.objects.filter(account=account).select_related("instrument").order_by("-id")
    if symbol:
        orders = orders.filter(instrument__symbol=symbol)
        pending = [order for order in pending if order.instrument.symbol == symbol]
    if status:
        orders = orders.filter(status=status)
        pending = [order for order in pending if order.status == status]
    if open_only:
        orders = orders.filter(status__in=OPEN_STATUSES)
    return OrderList(recorded=orders, pending=sorted(pending, key=lambda o: -o.pk))


def order_get(*, account: Account, order_id: int) -> Order | PendingOrder | None:
    """One of the account's orders by its id (recorded or not yet); None for another account's
    order."""
    try:
        record = journal.pending_order(account.pk, order_id)
    except redis.RedisError:
        record = None
    order = (
        Order.objects.filter(account=account, pk=order_id)
        .select_related("instrument")
        .prefetch_related("fills")
        .first()
    )
    if order is None and record is not None:
        instrument = Instrument.objects.filter(symbol=record.symbol).first()
        if instrument is not None:
            order = order_from_record(record, instrument, account)
    return order


def order_by_client_order_id(account: Account, client_order_id: str) -> Order | None:
    """The account's recorded order with this client order id, with its instrument and fills."""
    return (
        Order.objects.filter(account=account, client_order_id=client_order_id)
        .select_related("instrument")
        .prefetch_related("fills")
        .first()
    )


def order_find_by_client_order_id(
    *, account: Account, client_order_id: str
) -> Order | PendingOrder | None:
    """One of the account's orders by its client order id, recorded or not yet (the journal's
    index of the orders it still keeps records of, then the database)."""
    try:
        order_id = journal.pending_order_id(account.pk, client_order_id)
    except redis.RedisError:
        order_id = None
    if order_id is not None:
        order = order_get(account=account, order_id=order_id)
        if order is not None:
            return order
    return order_by_client_order_id(account, client_order_id)


def open_orders_for_cancel(account: Account, symbol: str | None) -> list[tuple[str, int]]:
    """(symbol, exchange id) of the account's recorded open orders (in one symbol, or all)."""
    orders = Order.objects.filter(account=account, status__in=OPEN_STATUSES, order_id__isnull=False)
    if symbol:
        orders = orders.filter(instrument__symbol=symbol)
    return list(orders.values_list("instrument__symbol", "order_id"))


def fill_list(*, account: Account, symbol: str | None = None) -> QuerySet[Fill]:
    fills = Fill.objects.filter(account=account).select_related("instrument", "trade")
    if symbol:
        fills = fills.filter(instrument__symbol=symbol)
    return fills.order_by("-id")


@dataclass(frozen=True)
class PositionValue:
    instrument: Instrument  # its tick and lot say how the numbers are written
    quantity: Decimal
    cost_basis: Decimal
    average_price: Decimal  # derived from the cost basis, for display
    realized_pnl: Decimal  # net of fees
    fees_paid: Decimal
    mark_price: Decimal
    market_value: Decimal
    unrealized_pnl: Decimal

    @property
    def symbol(self) -> str:
        return self.instrument.symbol


@dataclass(frozen=True)
class AccountSummary:
    account: Account
    cash: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees_paid: Decimal
    positions: list[PositionValue]


def account_summary(account: Account) -> AccountSummary:
    """Cash, positions marked at mid (else last trade, else the reference price), P&L, equity.
    Equity is computed as in `account_equity`. Exact, not rounded: the cost basis and the cash
    are whole tick-lots, the mark a whole (or, at a mid, a half) tick (`recorder.money`)."""
    positions = []
    for position in account.positions.select_related("instrument").order_by("instrument__symbol"):
        mark = mark_price(position.instrument)
        positions.append(
            PositionValue(
                instrument=position.instrument,
                quantity=position.quantity,
                cost_basis=position.cost_basis,
                average_price=position.average_price,
                realized_pnl=position.realized_pnl,
                fees_paid=position.fees_paid,
                mark_price=mark,
                market_value=position.quantity * mark,
                unrealized_pnl=position.unrealized_pnl(mark),
            )
        )
    return AccountSummary(
        account=account,
        cash=account.cash,
        equity=account.cash + sum((p.market_value for p in positions), Decimal(0)),
        realized_pnl=sum((p.realized_pnl for p in positions), Decimal(0)),
        unrealized_pnl=sum((p.unrealized_pnl for p in positions), Decimal(0)),
        fees_paid=sum((p.fees_paid for p in positions), Decimal(0)),
        positions=positions,
    )


#: An account's limits by the name `exchange.services.account_limits_set` takes them by (the API's
#: account view's names), with the `Account` field each is stored in.
ACCOUNT_LIMITS = {
    "initial_cash": "initial_cash",
    "min_bankroll": "min_bankroll",
    "max_position": "default_max_position",
    "max_order_qty": "max_order_qty",
}


def account_limits(account: Account) -> dict:
    """{"initial_cash" (Decimal), "min_bankroll" (Decimal), "max_position" (int lots per
    instrument), "max_order_qty" (int lots)} of an account."""
    return {name: getattr(account, field) for name, field in ACCOUNT_LIMITS.items()}


def api_token_list(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def api_token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_by_secret(secret: str) -> ApiToken | None:
    """The token whose secret this is (with its user), or None. Only digests are stored."""
    digest = api_token_digest(secret)
    return api_tokens_by_digest([digest]).get(digest)


def api_tokens_by_digest(digests: list[str]) -> dict[str, ApiToken]:
    """The tokens (with their users) of these digests that exist, by digest."""
    # The user's trading account comes along (one query for all on the order path).
    tokens = ApiToken.objects.select_related("user", "user__trading_account").filter(
        digest__in=digests
    )
    return {token.digest: token for token in tokens}


# --- Reads for the simulation controls (agents app) --------------------------------------------


def mark_prices(instruments) -> dict[str, Decimal]:
    """`mark_price` of several instruments at once: one MGET for the books, a last-trade query
    only for an instrument whose book lacks a side."""
    instruments = list(instruments)
    marks = _book_mids(instruments)
    for instrument in instruments:
        if instrument.symbol in marks:
            continue
        last = Trade.objects.filter(instrument=instrument).order_by("-seq").first()
        marks[instrument.symbol] = last.price if last is not None else instrument.reference_price
    return marks


def engine_book_now(symbol: str):
    """The engine's book of ``symbol`` at its journal's last entry, and that entry's id ("0-0":
    an empty journal): the worker's last snapshot (written at most `snapshot_interval` apart)
    with every later entry applied in process as the worker applies them — what the engine
    holds, or will once it has read its journal. For research forks of the live market."""
    import flashbook_engine

    client = journal.client()
    data, jid = client.hmget(keys.key("snap", symbol), ["data", "jid"])
    if data is not None and jid is not None:
        book, position = flashbook_engine.OrderBook.restore(data), jid.decode()
    else:
        book, position = flashbook_engine.OrderBook(symbol), "0-0"
    while entries := client.xrange(keys.key("cmd", symbol), min="(" + position, count=10_000):
        for entry_id, fields in entries:
            position = entry_id.decode()
            book.apply_entry(fields, position)
    return book, position


def event_stream_last_id(symbol: str) -> str:
    """The id of the last entry of a symbol's event stream ("0-0" when it has none yet)."""
    newest = journal.client().xrevrange(keys.key("evt", symbol), count=1)
    return newest[0][0].decode() if newest else "0-0"


def reset_seq_after(symbol: str, entry_id: str) -> int | None:
    """The sequence number of the first RESET the engine wrote to a symbol's event stream after
    the entry `entry_id`, or None while it has not processed one."""
    import flashbook_engine

    start = f"({entry_id}" if entry_id != "0-0" else "-"
    while True:
        entries = journal.client().xrange(keys.key("evt", symbol), min=start, count=200)
        if not entries:
            return None
        for _, fields in entries:
            lines = fields.get(b"e", b"").decode()
            if " S RESET" in lines:
                for event in flashbook_engine.decode_events(lines):
                    if event.kind == "status" and event.status == "RESET":
                        return event.seq
        start = f"({entries[-1][0].decode()}"


def recorded_seq(symbol: str) -> int:
    """How far the database reflects a symbol's event stream (the recorder's cursor)."""
    from exchange.models import RecorderCursor

    value = (
        RecorderCursor.objects.filter(instrument__symbol=symbol)
        .values_list("last_seq", flat=True)
        .first()
    )
    return value or 0


@contextmanager
def consistent_reads() -> Iterator[None]:
    """Several reads that see one state of the database, as of the first: the recorder commits a
    fill's cash and position together, and a reader that takes them in two statements must not
    see one before the fill and the other after it (the leaderboard's equity flickered by a
    fill's value). On PostgreSQL a REPEATABLE READ transaction (READ COMMITTED, the default, takes
    a new snapshot per statement); SQLite's read transaction is a snapshot already. Inside a
    transaction the caller's isolation stands."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def position_list(*, account_ids) -> list:
    """The positions of several accounts, with their instruments."""
    from exchange.models import Position

    return list(
        Position.objects.filter(account_id__in=list(account_ids)).select_related("instrument")
    )


def open_order_counts(*, account_ids) -> dict[int, int]:
    """How many open orders each of several accounts has (accounts with none are left out)."""
    rows = (
        Order.objects.filter(account_id__in=list(account_ids), status__in=OPEN_STATUSES)
        .values("account_id")
        .annotate(count=Count("id"))
    )
    return {row["account_id"]: row["count"] for row in rows}


@dataclass(frozen=True)
class RecordedAccount:
    """An account as the database records it at a cursor: cash, position in one instrument (in
    lots) and its open orders there that the engine knows (they have an exchange id)."""

    account: Account
    position_lots: int
    open_orders: list[Order]


def recorded_accounts(symbol: str, account_ids) -> tuple[int, dict[int, RecordedAccount]]:
    """The recorder's cursor of a symbol and, consistent with it (one transaction: the recorder
    moves the cursor in the transaction that writes what it covers), the given accounts' cash,
    position and open orders in that symbol. A follower of the event stream that starts after
    the cursor with this state knows everything."""
    from django.db import transaction

    from exchange.models import Position, RecorderCursor

    account_ids = list(account_ids)
    with transaction.atomic():
        instrument = Instrument.objects.get(symbol=symbol)
        cursor = (
            RecorderCursor.objects.filter(instrument=instrument)
            .values_list("last_seq", flat=True)
            .first()
        ) or 0
        accounts = {a.pk: a for a in Account.objects.filter(pk__in=account_ids)}
        positions = dict(
            Position.objects.filter(instrument=instrument, account_id__in=account_ids).values_list(
                "account_id", "quantity"
            )
        )
        orders: dict[int, list[Order]] = {pk: [] for pk in accounts}
        for order in (
            Order.objects.filter(
                instrument=instrument,
                account_id__in=account_ids,
                status__in=OPEN_STATUSES,
                order_id__isnull=False,
            )
            .select_related("instrument")
            .order_by("order_id")
        ):
            orders[order.account_id].append(order)
    return cursor, {
        pk: RecordedAccount(
            account=account,
            position_lots=instrument.qty_to_lots(positions.get(pk, Decimal(0))),
            open_orders=orders[pk],
        )
        for pk, account in accounts.items()
    }


# --- An account's history (the history page) ----------------------------------------------------


def order_history(*, account: Account) -> QuerySet[Order]:
    """Every recorded order of the account, newest first (the history page pages through it)."""
    return Order.objects.filter(account=account).select_related("instrument").order_by("-id")


@dataclass(frozen=True)
class PnlPoint:
    """The account's P&L just after one of its fills: realized (net of fees) and unrealized, each
    instrument marked at the last price the account traded it at."""

    time: datetime
    fill_id: int
    realized: Decimal
    unrealized: Decimal
    fees: Decimal

    @property
    def total(self) -> Decimal:
        return self.realized + self.unrealized


@dataclass
class _Replay:
    """A position replayed fill by fill, as `exchange.recorder.money` moves the recorded one."""

    quantity: Decimal = Decimal(0)
    cost_basis: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    mark: Decimal = Decimal(0)


def account_pnl_series(*, account: Account) -> list[PnlPoint]:
    """The account's P&L over time, one point per fill, from its recorded fills alone: each fill
    replayed through the recorder's own arithmetic (`recorder.money.apply_fill`: exact, on the
    signed cost basis), its fee out of realized P&L; unrealized is mark x quantity - cost basis
    with each instrument's mark the price of the account's last fill in it. A wash (both sides of
    a trade the account's) moves no position, only fees — as the recorder settles it. Fills from
    before a simulation reset (which flattens positions) are replayed as they happened."""
    fills = list(
        Fill.objects.filter(account=account)
        .order_by("executed_at", "id")
        .values_list(
            "id",
            "trade_id",
            "instrument_id",
            "instrument__tick_size",
            "instrument__lot_size",
            "side",
            "price",
            "quantity",
            "fee",
            "executed_at",
        )
    )
    washes = {trade for trade, n in Counter(fill[1] for fill in fills).items() if n > 1}
    positions: dict[int, _Replay] = {}
    fees = Decimal(0)
    series = []
    for fill_id, trade, instrument, tick, lot, side, price, qty, fee, executed_at in fills:
        position = positions.setdefault(instrument, _Replay())
        if trade not in washes:
            apply_fill(position, side, price, qty, money_quantum(tick, lot))
        position.realized_pnl -= fee
        position.mark = price
        fees += fee
        series.append(
            PnlPoint(
                time=executed_at,
                fill_id=fill_id,
                realized=sum((p.realized_pnl for p in positions.values()), Decimal(0)),
                unrealized=sum(
                    (p.mark * p.quantity - p.cost_basis for p in positions.values()), Decimal(0)
                ),
                fees=fees,
            )
        )
    return series
