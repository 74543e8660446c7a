"""The order gateway: the one path every order takes, from the REST API and from the agents.

It validates an order against its instrument and its account, records it (so a retry with the
same client order id finds it, and its owner sees it at once), and after the database commit
appends the command to the symbol's journal. Invalid input raises an `ExchangeError` and writes
nothing, neither to the database nor to the journal.
"""

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import flashbook_engine
import redis
from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from exchange import journal, order_store
from exchange.errors import (
    Conflict,
    ExchangeError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unavailable,
)
from exchange.models import (
    OPEN_STATUSES,
    Account,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from exchange.order_state import JOURNAL_UNAVAILABLE, OrderProgress, concerns
from exchange.refresh import GroupedRefresh, RefreshAhead
from exchange.selectors import account_equities, account_equity, complete_exchange_ids

logger = logging.getLogger("flashbook.gateway")

STP_MODES = ("none", "cancel_newest", "cancel_oldest", "cancel_both")
CLIENT_ORDER_ID_MAX = 64
# The recorder names the orders it learns of only from the engine `engine-{SYMBOL}-{order_id}`.
RESERVED_CLIENT_ORDER_ID_PREFIX = "engine-"
# How long an instrument read for an order is reused by this process. A save or delete in this
# process drops it at once (signals below); one in another process (the admin served by the other
# worker, a management command) is honoured within this many seconds — halts included.
INSTRUMENT_CACHE_SECONDS = 1.0
_INSTRUMENT_CACHE_LIMIT = 1024  # unknown symbols must not grow it without bound
_instrument_cache: dict[str, tuple[float, Instrument | None]] = {}


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str
    quantity: Decimal
    order_type: str = OrderType.LIMIT
    time_in_force: str | None = None  # default: GTC for limit, IOC for market
    price: Decimal | None = None
    post_only: bool = False
    client_order_id: str | None = None
    stp: str = "cancel_newest"


@dataclass(frozen=True)
class OrderOutcome:
    """An order as the gateway knows it right after submission: the stored order, and — when the
    engine answered in time — its immediate outcome (`engine` is False when it did not)."""

    order: Order
    engine: bool
    progress: OrderProgress | None
    created: bool


def _decimal(value, field: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput(
            f"{field} must be a number.", field=field, code="invalid_number"
        ) from None
    if not number.is_finite():
        raise InvalidInput(f"{field} must be a finite number.", field=field, code="invalid_number")
    return number


@receiver(post_save, sender=Instrument)
@receiver(post_delete, sender=Instrument)
def _instrument_changed(**kwargs) -> None:
    _instrument_cache.clear()


def _cached_instrument(symbol: str) -> Instrument | None:
    now = time.monotonic()
    hit = _instrument_cache.get(symbol)
    if hit is not None and now - hit[0] < INSTRUMENT_CACHE_SECONDS:
        return hit[1]
    instrument = _read_instrument(symbol)
    if len(_instrument_cache) >= _INSTRUMENT_CACHE_LIMIT:
        _instrument_cache.clear()
    _instrument_cache[symbol] = (now, instrument)
    return instrument


def _instrument_for_trading(symbol: str) -> Instrument:
    return _tradable(symbol, _cached_instrument(symbol))


def _tradable(symbol: str, instrument: Instrument | None) -> Instrument:
    if instrument is None:
        raise NotFound(f"Unknown symbol {symbol!r}.", field="symbol", code="unknown_symbol")
    if not instrument.enabled:
        raise InvalidInput(
            f"{symbol} is not open for trading.", field="symbol", code="instrument_disabled"
        )
    if instrument.halted:
        raise Conflict(f"Trading in {symbol} is halted.", field="symbol", code="instrument_halted")
    return instrument


# The choices' values, once: `Side.values` and its kind build a new list on every access.
_SIDES = frozenset(Side.values)
_ORDER_TYPES = frozenset(OrderType.values)
_TIMES_IN_FORCE = frozenset(TimeInForce.values)


def _validated_new(request: OrderRequest, instrument: Instrument, account: Account) -> dict:
    """The journal fields of a valid NEW, or an InvalidInput naming the first bad field."""
    if request.side not in _SIDES:
        raise InvalidInput("side must be 'buy' or 'sell'.", field="side", code="invalid_choice")
    if request.order_type not in _ORDER_TYPES:
        raise InvalidInput("type must be 'limit' or 'market'.", field="type", code="invalid_choice")
    is_limit = request.order_type == OrderType.LIMIT
    tif = request.time_in_force or (TimeInForce.GTC if is_limit else TimeInForce.IOC)
    if tif not in _TIMES_IN_FORCE:
        raise InvalidInput(
            "time_in_force must be 'gtc', 'ioc' or 'fok'.",
            field="time_in_force",
            code="invalid_choice",
        )
    if not is_limit and tif == TimeInForce.GTC:
        raise InvalidInput(
            "A market order must be IOC or FOK.", field="time_in_force", code="invalid_choice"
        )
    if request.post_only and (not is_limit or tif != TimeInForce.GTC):
        raise InvalidInput(
            "post_only is only for GTC limit orders.", field="post_only", code="invalid_post_only"
        )
    if request.stp not in STP_MODES:
        raise InvalidInput(
            f"stp must be one of {', '.join(STP_MODES)}.", field="stp", code="invalid_choice"
        )

    lots = _valid_lots(request.quantity, instrument, account)

    fields: dict[str, str | int] = {
        "t": "new",
        "acct": account.pk,
        "side": request.side,
        "type": request.order_type,
        "tif": tif,
        "qty": lots,
        "maxpos": account.default_max_position,
        "stp": request.stp,
    }
    if is_limit:
        if request.price is None:
            raise InvalidInput("A limit order needs a price.", field="price", code="required")
        fields["px"] = _valid_ticks(request.price, instrument)
    elif request.price is not None:
        raise InvalidInput("A market order has no price.", field="price", code="invalid_price")
    if request.post_only:
        fields["post"] = 1
    return fields


def _valid_lots(value, instrument: Instrument, account: Account) -> int:
    """An order quantity in lots, checked against the instrument, the account and the engine."""
    quantity = _decimal(value, "quantity")
    if quantity <= 0:
        raise InvalidInput("quantity must be positive.", field="quantity", code="invalid_quantity")
    if not instrument.is_whole_lots(quantity):
        raise InvalidInput(
            f"quantity must be a whole number of lots of {instrument.lot_size.normalize()}.",
            field="quantity",
            code="invalid_quantity",
        )
    if quantity < instrument.min_order_qty or quantity > instrument.max_order_qty:
        raise InvalidInput(
            f"quantity must be between {instrument.min_order_qty.normalize()} and "
            f"{instrument.max_order_qty.normalize()}.",
            field="quantity",
            code="invalid_quantity",
        )
    lots = instrument.qty_to_lots(quantity)
    if lots > account.max_order_qty:
        raise InvalidInput(
            f"quantity is above the account's order limit of {account.max_order_qty} lots.",
            field="quantity",
            code="order_too_large",
        )
    if lots > flashbook_engine.MAX_QTY:
        raise InvalidInput("quantity is too large.", field="quantity", code="invalid_quantity")
    return lots


def _valid_ticks(value, instrument: Instrument) -> int:
    """A limit price in ticks: positive, on the instrument's grid, within the engine's range."""
    price = _decimal(value, "price")
    if price <= 0:
        raise InvalidInput("price must be positive.", field="price", code="invalid_price")
    if not instrument.is_on_tick(price):
        raise InvalidInput(
            f"price must be a multiple of the tick size {instrument.tick_size.normalize()}.",
            field="price",
            code="invalid_price",
        )
    ticks = instrument.price_to_ticks(price)
    if ticks > flashbook_engine.MAX_PRICE:
        raise InvalidInput("price is too large.", field="price", code="invalid_price")
    return ticks


def _check_account(account: Account) -> None:
    refused = _account_refusal(account, lambda: account_equity(account))
    if refused is not None:
        raise refused


def _account_refusal(account: Account, equity: Callable[[], Decimal]) -> ExchangeError | None:
    """Why the account may not place orders now, if it may not."""
    if not account.active:
        return Forbidden("This account is not active.", code="account_inactive")
    if equity() < account.min_bankroll:
        return Forbidden(
            "Equity is below the account's minimum bankroll.", code="insufficient_equity"
        )
    return None


# Generated client order ids: this process's random prefix and a counter — unique without a system
# call per order (uuid4 reads the kernel's random source every time).
_ID_PREFIX = uuid.uuid4().hex[:16]
_id_counter = itertools.count(1)


def _generated_client_order_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def _client_order_id(value: str | None) -> tuple[str, bool]:
    """The order's client order id, and whether it was generated here (then no order can have
    it yet)."""
    if value is None or value == "":
        return _generated_client_order_id(), True
    if len(value) > CLIENT_ORDER_ID_MAX or not value.isascii() or not value.isprintable():
        raise InvalidInput(
            f"client_order_id must be at most {CLIENT_ORDER_ID_MAX} printable ASCII characters.",
            field="client_order_id",
            code="invalid_client_order_id",
        )
    if value.startswith(RESERVED_CLIENT_ORDER_ID_PREFIX):
        raise InvalidInput(
            f"client_order_id must not start with {RESERVED_CLIENT_ORDER_ID_PREFIX!r} "
            "(reserved for orders the exchange records on its own).",
            field="client_order_id",
            code="invalid_client_order_id",
        )
    return value, False


@dataclass
class _NewOrder:
    """A NEW that passed validation: the order row to insert and the journal fields to append."""

    order: Order
    fields: dict[str, str | int]


def _new_order(
    account: Account, request: OrderRequest, instrument: Instrument, client_order_id: str
) -> _NewOrder:
    """Validates a NEW against its instrument and the account's limits (no database access)."""
    fields = _validated_new(request, instrument, account)
    quantity = _decimal(request.quantity, "quantity")
    price = None if request.order_type == OrderType.MARKET else _decimal(request.price, "price")
    order = Order(
        instrument=instrument,
        account=account,
        client_order_id=client_order_id,
        side=request.side,
        order_type=request.order_type,
        time_in_force=fields["tif"],
        post_only=request.post_only,
        price=price,
        quantity=quantity,
    )
    return _NewOrder(order=order, fields=fields)


def _journal_fields(new: _NewOrder, reply_key: str | None) -> dict[str, str | int]:
    fields = {**new.fields, "ref": new.order.pk}
    if reply_key:
        fields["reply"] = reply_key
    return fields


def _unavailable_after_send(client_order_id: str) -> Unavailable:
    # A timeout (or any other failure once the command was sent): Redis may have taken the
    # entry. The order stays PENDING; the recorder settles it from the engine's events (found by
    # `ref`), or it is never journaled and stays PENDING without an exchange id.
    return Unavailable(
        "The exchange did not confirm the order in time: its outcome is unknown. "
        f"Look it up by its client order id {client_order_id!r} before resubmitting.",
        code="outcome_unknown",
    )


def _progress(events: list | None, order_id: int, lots: int) -> OrderProgress | None:
    """The order's immediate outcome from the engine's reply (its decoded event lines)."""
    if events is None:
        return None
    progress = OrderProgress(order_id=order_id, quantity_lots=lots)
    for event in events:
        if concerns(event, order_id):
            progress.apply(event)
    return progress


def order_submit(*, account: Account, request: OrderRequest, wait: float = 0.0) -> OrderOutcome:
    """Validates and submits a NEW. With `wait` > 0, waits up to that many seconds for the
    engine's immediate outcome. A retry with a known client order id returns the stored order
    and submits nothing."""
    client_order_id, generated = _client_order_id(request.client_order_id)
    if not generated:
        existing = Order.objects.filter(account=account, client_order_id=client_order_id).first()
        if existing is not None:
            return OrderOutcome(order=existing, engine=False, progress=None, created=False)

    instrument = _instrument_for_trading(request.symbol)
    new = _new_order(account, request, instrument, client_order_id)
    _check_account(account)
    order = new.order
    try:
        if generated:
            order.save(force_insert=True)  # a fresh uuid cannot collide: no savepoint needed
        else:
            with transaction.atomic():
                order.save(force_insert=True)
    except IntegrityError:
        # A concurrent retry with the same client order id won the race: it is the order.
        order = Order.objects.get(account=account, client_order_id=client_order_id)
        return OrderOutcome(order=order, engine=False, progress=None, created=False)

    reply_key = journal.new_reply_key(instrument.symbol) if wait > 0 else None
    fields = _journal_fields(new, reply_key)
    try:
        order_id = journal.append_new(instrument.symbol, fields)
    except redis.ConnectionError as exc:
        # Redis could not be reached, so nothing was written (should the connection have broken
        # after the command went out after all, the engine's `accepted` overrides this reason —
        # see `order_state`).
        Order.objects.filter(pk=order.pk).update(
            status=OrderStatus.REJECTED, reject_reason=JOURNAL_UNAVAILABLE
        )
        raise Unavailable("The exchange cannot take orders right now.") from exc
    except redis.RedisError as exc:
        raise _unavailable_after_send(client_order_id) from exc
    # The row gets its exchange id from the recorder; until then readers find it in the journal's
    # pending ids (`selectors.complete_exchange_ids`).
    order.order_id = order_id

    progress = None
    if reply_key:
        try:
            lines = journal.wait_reply(reply_key, wait)
            events = None if lines is None else flashbook_engine.decode_events(lines)
            progress = _progress(events, order_id, fields["qty"])
        except redis.RedisError:
            progress = None
    return OrderOutcome(order=order, engine=progress is not None, progress=progress, created=True)


# --- The same, for asyncio callers (the HTTP order-entry path, the agents runner) --------------
#
# One event loop serves many orders at once, so nothing here may block it: database work runs in
# the order store's reader thread, and the writes of concurrent orders are committed together
# (`exchange.order_store`). What an order needs to read — its instrument, its account's standing —
# comes from short-lived caches, as in the synchronous path, refreshed in the background while
# orders keep coming (`exchange.refresh`): a value in steady use is never waited for.

# How long this process trusts an account's standing (active, equity above its minimum bankroll)
# once checked. The engine enforces position limits on every order regardless.
ACCOUNT_CHECK_SECONDS = 1.0
_instruments: RefreshAhead[str, Instrument | None] = RefreshAhead(
    INSTRUMENT_CACHE_SECONDS, entries=_instrument_cache, limit=_INSTRUMENT_CACHE_LIMIT
)


def _read_instrument(symbol: str) -> Instrument | None:
    return Instrument.objects.filter(symbol=symbol).first()


async def _ainstrument_for_trading(symbol: str) -> Instrument:
    store = order_store.for_running_loop()
    instrument = await _instruments.get(symbol, lambda: store.read(_read_instrument, symbol))
    return _tradable(symbol, instrument)


def _account_refusals(accounts: dict[int, Account]) -> dict[int, ExchangeError | None]:
    """`_check_account`'s verdict on several accounts, by id (one query for all)."""
    active = [account for account in accounts.values() if account.active]
    equities = account_equities(active) if active else {}
    return {
        pk: _account_refusal(account, lambda pk=pk: equities[pk])
        for pk, account in accounts.items()
    }


async def _aaccount_refusals(accounts: dict[int, Account]) -> dict[int, ExchangeError | None]:
    return await order_store.for_running_loop().read(_account_refusals, accounts)


# The standing of every account trading through this process, read together (`GroupedRefresh`).
_account_checks: GroupedRefresh[int, Account, ExchangeError | None] = GroupedRefresh(
    ACCOUNT_CHECK_SECONDS, _aaccount_refusals
)


async def _acheck_account(account: Account) -> None:
    refused = await _account_checks.get(account.pk, account)
    if refused is not None:
        raise refused


async def aorder_submit(
    *, account: Account, request: OrderRequest, wait: float = 0.0
) -> OrderOutcome:
    """`order_submit` for asyncio callers: the same checks, writes and outcome."""
    client_order_id, generated = _client_order_id(request.client_order_id)
    store = order_store.for_running_loop()
    if not generated:
        existing = await store.find(account, client_order_id)
        if existing is not None:
            return OrderOutcome(order=existing, engine=False, progress=None, created=False)

    instrument = await _ainstrument_for_trading(request.symbol)
    new = _new_order(account, request, instrument, client_order_id)
    await _acheck_account(account)
    order = new.order
    try:
        await store.insert(order, generated_client_id=generated)
    except IntegrityError:
        order = await store.find(account, client_order_id)
        return OrderOutcome(order=order, engine=False, progress=None, created=False)

    listener = journal.reply_listener(instrument.symbol) if wait > 0 else None
    fields = _journal_fields(new, listener.key if listener else None)
    reply = listener.expect(order.pk) if listener else None
    try:
        order_id = await journal.aappend_new(instrument.symbol, fields)
    except redis.RedisError as exc:
        if listener:
            listener.forget(order.pk)
        if isinstance(exc, redis.ConnectionError):
            await store.reject(order.pk, JOURNAL_UNAVAILABLE)
            raise Unavailable("The exchange cannot take orders right now.") from exc
        raise _unavailable_after_send(client_order_id) from exc
    order.order_id = order_id  # the row gets it from the recorder, as in `order_submit`

    progress = None
    if reply is not None:
        try:
            events = await asyncio.wait_for(reply, wait)
        except TimeoutError:
            listener.forget(order.pk)
            events = None
        progress = _progress(events, order_id, fields["qty"])
    return OrderOutcome(order=order, engine=progress is not None, progress=progress, created=True)


def _own_open_order(account: Account, order: Order) -> Order:
    if order.account_id != account.pk:
        raise NotFound("No such order.", code="unknown_order")
    if not order.is_open or order.order_id is None:
        raise Conflict(f"The order is {order.status.lower()}.", code="order_not_open")
    return order


def _cancel_command(account: Account, order: Order) -> dict[str, str | int]:
    _own_open_order(account, order)
    return {"t": "cancel", "id": order.order_id, "acct": account.pk}


def _replace_command(account: Account, order: Order, price, quantity) -> dict[str, str | int]:
    _own_open_order(account, order)
    if price is None and quantity is None:
        raise InvalidInput("Give a new price, a new quantity or both.", code="required")
    instrument = order.instrument
    fields: dict[str, str | int] = {"t": "replace", "id": order.order_id, "acct": account.pk}
    if price is not None:
        if order.order_type != OrderType.LIMIT:
            raise InvalidInput("Only limit orders have a price.", field="price")
        fields["px"] = _valid_ticks(price, instrument)
    if quantity is not None:
        fields["qty"] = _valid_lots(quantity, instrument, account)
    return fields


def order_cancel(*, account: Account, order: Order) -> None:
    """Asks the engine to cancel an open order of the account; the outcome arrives as events."""
    _append(order.instrument.symbol, _cancel_command(account, order))


def order_replace(*, account: Account, order: Order, price=None, quantity=None) -> None:
    """Asks the engine to change an open order's price and/or remaining quantity."""
    _append(order.instrument.symbol, _replace_command(account, order, price, quantity))


async def _aorder_instrument(order: Order) -> Instrument:
    if not Order._meta.get_field("instrument").is_cached(order):
        await order_store.for_running_loop().read(lambda: order.instrument)
    return order.instrument


async def _aappend(symbol: str, fields: dict[str, str | int]) -> None:
    try:
        await journal.aappend(symbol, fields)
    except redis.RedisError as exc:
        raise Unavailable("The exchange cannot take commands right now.") from exc


async def aorder_cancel(*, account: Account, order: Order) -> None:
    """`order_cancel` for asyncio callers."""
    instrument = await _aorder_instrument(order)
    await _aappend(instrument.symbol, _cancel_command(account, order))


async def aorder_replace(*, account: Account, order: Order, price=None, quantity=None) -> None:
    """`order_replace` for asyncio callers."""
    instrument = await _aorder_instrument(order)
    await _aappend(instrument.symbol, _replace_command(account, order, price, quantity))


def order_cancel_all(*, account: Account, symbol: str | None = None) -> int:
    """Asks the engine to cancel every open order of the account (in one symbol, or all):
    resting ones and PENDING ones already journaled (they have an exchange id; the engine
    handles their NEW before the CANCEL)."""
    orders = Order.objects.filter(account=account, status__in=OPEN_STATUSES).select_related(
        "instrument"
    )
    if symbol:
        orders = orders.filter(instrument__symbol=symbol)
    orders = list(orders)
    complete_exchange_ids(orders)
    count = 0
    for order in orders:
        if order.order_id is None:
            continue  # never journaled (Redis was down): nothing for the engine to cancel
        _append(order.instrument.symbol, {"t": "cancel", "id": order.order_id, "acct": account.pk})
        count += 1
    return count


def instrument_command(*, instrument: Instrument, command: str) -> None:
    """Sends HALT, RESUME or RESET to an instrument's book (staff operations)."""
    if command not in ("halt", "resume", "reset"):
        raise InvalidInput(f"Unknown book command {command!r}.", field="command")
    _append(instrument.symbol, {"t": command})
    # Halt and resume are stored with a bulk UPDATE (no signal): drop this process's cache now.
    _instrument_cache.clear()


def _append(symbol: str, fields: dict[str, str | int]) -> None:
    try:
        journal.append(symbol, fields)
    except redis.RedisError as exc:
        raise Unavailable("The exchange cannot take commands right now.") from exc
