"""The order gateway: the one path every order takes — the REST API (the order-entry adapter and
the DRF views), the agents runner, management commands and services.

It is asyncio: one function per action (`order_submit`, `order_cancel`, `order_replace`,
`order_cancel_all`, `instrument_command`). Synchronous callers use the same functions through
`blocking` (`async_to_sync` at their edge). An order is checked against the rules
(`exchange.orders.rules`, pure) and its account's standing, then appended to its symbol's journal —
the only write it makes before it is acknowledged. The recorder writes its database row later,
from the journal's record and the engine's events; until then its owner finds it in the journal's
record (`journal.pending_orders`), so a placed order is visible, cancellable and replaceable at
once. Invalid input raises an `ExchangeError` and writes nothing.

What an order reads — its instrument, its account's standing — comes from caches of a second
(`exchange.orders.refresh`), refreshed in the background while orders keep coming: a value in
steady use is never waited for. A save or delete of an instrument in this process drops them at
once; one in another process is honoured within `INSTRUMENT_CACHE_SECONDS` — halts included.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref

import redis
from asgiref.sync import AsyncToSync, async_to_sync, sync_to_async
from django.db import connection
from django.db.models import Max
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from exchange.errors import Conflict, ExchangeError, NotFound, Unavailable
from exchange.models import Account, Instrument, Order, OrderType, Side
from exchange.orders import funds, journal, rules
from exchange.orders.coalesce import Coalescer
from exchange.orders.progress import OrderProgress, concerns
from exchange.orders.refresh import GroupedRefresh
from exchange.orders.rules import OrderRequest
from exchange.selectors import (
    PendingOrder,
    account_equities,
    open_orders_for_cancel,
    order_by_client_order_id,
    order_from_record,
)

logger = logging.getLogger("flashbook.gateway")

__all__ = [
    "OrderOutcome",
    "OrderRequest",
    "blocking",
    "instrument_command",
    "order_cancel",
    "order_cancel_all",
    "order_replace",
    "order_submit",
]

# How long an instrument, or an account's standing (active, equity above its minimum bankroll),
# read for an order is reused by this process. The engine enforces position limits on every order
# regardless.
INSTRUMENT_CACHE_SECONDS = 1.0
ACCOUNT_CHECK_SECONDS = 1.0


class OrderOutcome:
    """An order as the gateway knows it right after submission, and — when the engine answered in
    time — its immediate outcome (`engine` is False when it did not). `created` is False for a
    retry of a client order id the account used already: nothing was placed.

    `record` is the journal's record of an order placed now; `order` the order as an (unsaved)
    `Order`, built only when asked for: a caller that keeps only the id and the record (the agents
    runner) does not pay for a model instance per order (~9 % of the runner's CPU)."""

    __slots__ = ("_account", "_instrument", "_order", "created", "engine", "progress", "record")

    def __init__(
        self,
        *,
        created: bool,
        engine: bool = False,
        progress: OrderProgress | None = None,
        order: Order | None = None,
        record: journal.PendingRecord | None = None,
        instrument: Instrument | None = None,
        account: Account | None = None,
    ) -> None:
        self.created, self.engine, self.progress = created, engine, progress
        self._order, self.record = order, record
        self._instrument, self._account = instrument, account

    @property
    def order_id(self) -> int:
        return self.record.order_id if self._order is None else self._order.order_id

    @property
    def order(self) -> Order | PendingOrder:
        if self._order is None:
            self._order = order_from_record(self.record, self._instrument, self._account)
        return self._order


# --- What an order reads -----------------------------------------------------------------------


def _read_instruments(symbols: dict[str, None]) -> dict[str, Instrument | None]:
    found = {i.symbol: i for i in Instrument.objects.filter(symbol__in=list(symbols))}
    return {symbol: found.get(symbol) for symbol in symbols}


def _read_refusals(accounts: dict[int, Account]) -> dict[int, ExchangeError | None]:
    """Why each account may not place orders now, if it may not (one query for all)."""
    active = [account for account in accounts.values() if account.active]
    equities = account_equities(active) if active else {}
    return {
        pk: rules.account_refusal(account, lambda pk=pk: equities[pk])
        for pk, account in accounts.items()
    }


_instruments: GroupedRefresh[str, None, Instrument | None] = GroupedRefresh(
    INSTRUMENT_CACHE_SECONDS, sync_to_async(_read_instruments), limit=1024
)
# The standing of every account trading through this process, read together. An account that
# trades less than once a second (most of the demo's agents) still counts as in use for a while:
# otherwise its value had expired at nearly every order and it was read on its own, ~14 reads a
# second for the demo market's 42 agents instead of ~1.3, and ~2.5 % of a core of the runner.
_account_checks: GroupedRefresh[int, Account, ExchangeError | None] = GroupedRefresh(
    ACCOUNT_CHECK_SECONDS, sync_to_async(_read_refusals), in_use_for=30 * ACCOUNT_CHECK_SECONDS
)


def clear_caches() -> None:
    """Forgets every instrument and account standing read (tests, whose rows come and go)."""
    _instruments.entries.clear()
    _account_checks.entries.clear()


@receiver(post_save, sender=Instrument)
@receiver(post_delete, sender=Instrument)
def _instrument_changed(**kwargs) -> None:
    _instruments.entries.clear()


async def _tradable(symbol: str) -> Instrument:
    return rules.tradable(symbol, await _instruments.get(symbol, None))


async def _check_account(account: Account) -> None:
    refused = await _account_checks.get(account.pk, account)
    if refused is not None:
        raise refused


def _highest_order_key() -> int:
    return Order.objects.aggregate(top=Max("pk"))["top"] or 0


# --- Submit ------------------------------------------------------------------------------------


def _progress(events: list | None, order_id: int, lots: int) -> OrderProgress | None:
    """The order's immediate outcome from the engine's reply (its decoded event lines)."""
    if events is None:
        return None
    progress = OrderProgress(order_id=order_id, quantity_lots=lots)
    for event in events:
        if concerns(event, order_id):
            progress.apply(event)
    return progress


async def _existing(account: Account, client_order_id: str, order_id: int | None = None):
    """The account's order with this client order id (by its id when the journal's index gave
    it): the journal's record while the recorder has not recorded it, else its row."""
    if order_id is None:
        order_id = await journal.aclient_order_id_holder(account.pk, client_order_id)
    if order_id is not None:
        record = await journal.apending_order(account.pk, order_id)
        if record is not None:
            instrument = await _instruments.get(record.symbol, None)
            if instrument is not None:
                return order_from_record(record, instrument, account)
    return await sync_to_async(order_by_client_order_id)(account, client_order_id)


async def order_submit(
    *, account: Account, request: OrderRequest, wait: float = 0.0, on_journaled=None
) -> OrderOutcome:
    """Validates and journals a NEW. With `wait` > 0, waits up to that many seconds for the
    engine's immediate outcome. A retry with a client order id the account used already returns
    that order and places nothing. `on_journaled()`, if given, is called once the NEW is in the
    journal — its place among the exchange's commands fixed — before the wait (a connection that
    keeps its commands in order sends the next one then)."""
    client_order_id, generated = rules.client_order_id(request.client_order_id)
    try:
        instrument = await _tradable(request.symbol)
        fields = rules.new_fields(request, instrument, account)
        await _check_account(account)
    except ExchangeError:
        if not generated:  # a retry is answered with its order, even if it would be refused now
            existing = await _existing(account, client_order_id)
            if existing is not None:
                return OrderOutcome(order=existing, created=False)
        raise
    if not generated and await _client_order_id_recorded(account.pk, client_order_id):
        # The journal's index of client order ids holds them until a while after the recorder
        # has recorded their orders; then the database has them.
        existing = await sync_to_async(order_by_client_order_id)(account, client_order_id)
        if existing is not None:
            return OrderOutcome(order=existing, created=False)
    if journal.id_floor_needed():
        await _raise_id_floor()

    symbol = instrument.symbol
    created_ms = time.time_ns() // 1_000_000
    record = journal.PendingRecord(
        order_id=0,
        account_id=account.pk,
        symbol=symbol,
        side=request.side,
        order_type=request.order_type,
        time_in_force=fields["tif"],
        price_ticks=fields.get("px", 0),
        quantity_lots=fields["qty"],
        post_only=request.post_only,
        created_ms=created_ms,
        client_order_id=client_order_id,
    )
    fields["coid"] = client_order_id
    fields["ts"] = created_ms
    listener = journal.reply_listener(symbol) if wait > 0 else None
    if listener is not None:
        fields["reply"] = listener.key
        listener.asked()
    new = journal.NewEntry(
        account.pk,
        fields,
        None if generated else client_order_id,
        record,
        _hold(request, instrument, fields),
    )
    try:
        try:
            order_id = await journal.aappend_new(symbol, new)
        except journal.FundsMissing:
            await _bootstrap_funds(account.pk)
            order_id = await journal.aappend_new(symbol, new)
    except redis.RedisError as exc:
        if listener is not None:
            listener.not_asked()
        raise _append_failed(exc, client_order_id) from exc
    except (journal.NotServed, journal.FundsShort, journal.FundsMissing, journal.NoBand) as exc:
        if listener is not None:
            listener.not_asked()
        raise _refused(exc, symbol) from exc
    if order_id < 0:  # the client order id is the account's order -order_id: a retry
        if listener is not None:
            listener.not_asked()
        existing = await _existing(account, client_order_id, -order_id)
        if existing is None:  # recorded meanwhile and not yet readable: never placed twice
            raise Unavailable(
                f"An order with client order id {client_order_id!r} exists; look it up.",
                code="outcome_unknown",
            )
        return OrderOutcome(order=existing, created=False)

    record.order_id = order_id
    if on_journaled is not None:
        on_journaled()
    progress = None
    if listener is not None:
        events = await listener.outcome(order_id, wait)
        progress = _progress(events, order_id, fields["qty"])
    return OrderOutcome(
        created=True,
        engine=progress is not None,
        progress=progress,
        record=record,
        instrument=instrument,
        account=account,
    )


def _recorded_client_order_ids(keys: list[tuple[int, str]]) -> list[bool]:
    """For each (account id, client order id): whether the account has a recorded order with
    it. One query for all (the unique index on the pair answers each)."""
    # Two IN lists (a cheap query to build) and the exact pairs picked out here.
    found = set(
        Order.objects.filter(
            account_id__in={account_id for account_id, _ in keys},
            client_order_id__in={client_order_id for _, client_order_id in keys},
        ).values_list("account_id", "client_order_id")
    )
    return [key in found for key in keys]


# The checks of the client order ids of concurrent orders, per event loop: one query for those
# that arrive together. Checked one by one, every order with a client order id cost a query of
# its own on the one thread `sync_to_async` runs them on, and that thread was the limit of a
# process placing orders for many clients at once (the FIX acceptor: ~170 orders/s).
_client_order_id_checks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Coalescer] = (
    weakref.WeakKeyDictionary()
)


async def _client_order_id_recorded(account_id: int, client_order_id: str) -> bool:
    loop = asyncio.get_running_loop()
    checks = _client_order_id_checks.get(loop)
    if checks is None:
        checks = _client_order_id_checks[loop] = Coalescer(
            sync_to_async(_recorded_client_order_ids)
        )
    return await checks.submit((account_id, client_order_id))


def _hold(request: OrderRequest, instrument: Instrument, fields: dict) -> str:
    """What a NEW holds of its account's cash until it ends: a buy its worst-case cost (a market
    buy valued by the append script at the band's upper limit); a sell nothing — short selling
    is bounded by the engine's position limit."""
    if request.side != Side.BUY:
        return ""
    if request.order_type == OrderType.LIMIT:
        return journal.hold_limit(rules.order_cost_units(instrument, fields["px"], fields["qty"]))
    return journal.hold_market(
        rules.market_buy_units_per_tick(instrument, fields["qty"]),
        rules.fee_rounding_units(instrument, fields["qty"]),
    )


# Builds of funds states in flight, per event loop and account: the concurrent orders of an
# account without a state wait for one build instead of each reading the database.
_funds_builds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Future]] = (
    weakref.WeakKeyDictionary()
)


async def _bootstrap_funds(account_id: int) -> None:
    loop = asyncio.get_running_loop()
    builds = _funds_builds.setdefault(loop, {})
    build = builds.get(account_id)
    if build is not None:
        await asyncio.shield(build)  # done either way: the caller's append says what came of it
        return
    build = builds[account_id] = loop.create_future()
    try:
        await sync_to_async(funds.bootstrap)(account_id)
    finally:
        builds.pop(account_id, None)
        build.set_result(None)


def _refused(exc: Exception, symbol: str) -> ExchangeError:
    """The client's error for an order the append script did not append."""
    if isinstance(exc, journal.FundsShort):
        return rules.insufficient_funds(exc.available, exc.needed)
    if isinstance(exc, journal.NoBand):
        return Conflict(
            f"{symbol} has no price band now to value a market buy at: place a limit order.",
            field="type",
            code="no_price_band",
        )
    if isinstance(exc, journal.FundsMissing):  # built, and gone again at once (a reset)
        return Unavailable("The account's buying power is being rebuilt; try again.")
    return Unavailable(
        f"No engine serves {symbol} yet: it is starting, or its engine is down. "
        "Nothing was placed; try again in a moment.",
        field="symbol",
        code="instrument_not_served",
    )


def _append_failed(exc: redis.RedisError, client_order_id: str) -> Unavailable:
    if isinstance(exc, redis.ConnectionError) and "connecting" in str(exc):
        # Redis could not be reached: the command never went out, nothing was written.
        return Unavailable("The exchange cannot take orders right now.")
    # A timeout, or a connection lost once the command was sent: Redis may have run the append
    # (atomically: all of it or none). If it did, the recorder records the order from the
    # journal and the engine's events; a retry with this client order id never places another.
    return Unavailable(
        "The exchange did not confirm the order in time: its outcome is unknown. "
        f"Look it up by its client order id {client_order_id!r} before resubmitting.",
        code="outcome_unknown",
    )


async def _raise_id_floor() -> None:
    try:
        await journal.araise_id_floor(await sync_to_async(_highest_order_key)())
    except redis.RedisError as exc:
        raise Unavailable("The exchange cannot take orders right now.") from exc


# --- Cancel, replace, cancel all, book commands ------------------------------------------------


async def _append(symbol: str, fields: dict[str, str | int]) -> None:
    try:
        await journal.aappend(symbol, fields)
    except redis.RedisError as exc:
        raise Unavailable("The exchange cannot take commands right now.") from exc


async def _order_instrument(order: Order | journal.PendingRecord) -> Instrument:
    if isinstance(order, journal.PendingRecord):
        instrument = await _instruments.get(order.symbol, None)
        if instrument is None:
            raise NotFound("No such order.", code="unknown_order")
        return instrument
    if isinstance(order, Order) and not Order._meta.get_field("instrument").is_cached(order):
        await sync_to_async(lambda: order.instrument)()
    return order.instrument  # a row's, or a `PendingOrder`'s


async def order_cancel(
    *,
    account: Account,
    order: Order | journal.PendingRecord,
    wait: float = 0.0,
    on_journaled=None,
) -> OrderProgress | None:
    """Asks the engine to cancel an open order of the account (a row, or the journal's record of
    an order placed through this gateway). With `wait` > 0, waits up to that many seconds for the
    engine's answer: the order's progress after it (`status` CANCELED, or `refused` with the
    engine's reason), None when it did not come in time; the outcome arrives as events anyway.
    `on_journaled` as for `order_submit`."""
    fields = rules.cancel_fields(account, order)
    instrument = await _order_instrument(order)
    append = functools.partial(_append, instrument.symbol)
    return await _answered(instrument, order, fields, wait, append, on_journaled)


async def order_replace(
    *,
    account: Account,
    order: Order | journal.PendingRecord,
    price=None,
    quantity=None,
    wait: float = 0.0,
    on_journaled=None,
) -> OrderProgress | None:
    """Asks the engine to change an open order's price and/or remaining quantity; `wait` as for
    `order_cancel` (the progress has the new price and quantity, and any fills the replace made)."""
    instrument = await _order_instrument(order)
    fields = rules.replace_fields(account, order, price, quantity, instrument)
    if order.side != Side.BUY:
        append = functools.partial(_append, instrument.symbol)
    else:
        # A buy's replace holds its whole new cost until the engine has answered (see
        # `journal._APPEND_REPLACE`): it is refused when the available cash does not cover that.
        hold = rules.replace_cost_units(order, fields, instrument)
        append = functools.partial(
            _append_replace_buy, instrument.symbol, account.pk, order.order_id, hold
        )
    return await _answered(instrument, order, fields, wait, append, on_journaled)


async def _append_replace_buy(
    symbol: str, account_id: int, order_id: int, hold: int, fields: dict
) -> None:
    append = functools.partial(
        journal.aappend_replace_buy, symbol, account_id, order_id, hold, fields
    )
    try:
        try:
            await append()
        except journal.FundsMissing:
            await _bootstrap_funds(account_id)
            await append()
    except redis.RedisError as exc:
        raise Unavailable("The exchange cannot take commands right now.") from exc
    except (journal.FundsShort, journal.FundsMissing) as exc:
        raise _refused(exc, symbol) from exc


async def _answered(
    instrument: Instrument, order, fields: dict, wait: float, append, on_journaled
) -> OrderProgress | None:
    """Appends a cancel or replace (`append(fields)`), naming this loop's reply list when the
    caller waits, and reads the order's progress from the engine's answer."""
    listener = journal.reply_listener(instrument.symbol) if wait > 0 else None
    if listener is not None:
        fields["reply"] = listener.key
        listener.asked()
    try:
        await append(fields)
    except BaseException:
        if listener is not None:
            listener.not_asked()
        raise
    if on_journaled is not None:
        on_journaled()
    if listener is None:
        return None
    events = await listener.outcome(order.order_id, wait, command=fields["t"])
    if events is None:
        return None
    progress = _known_progress(order, instrument)
    for event in events:
        if concerns(event, order.order_id):
            progress.apply(event)
    return progress


def _known_progress(order, instrument: Instrument) -> OrderProgress:
    """An open order's state as its caller knows it (a row, a pending order, the journal's
    record), in lots and ticks: where the engine's answer to a cancel or replace starts from."""
    if isinstance(order, journal.PendingRecord):
        return OrderProgress(
            order_id=order.order_id,
            quantity_lots=order.quantity_lots,
            status=order.status,
            price_ticks=order.price_ticks or None,
        )
    return OrderProgress(
        order_id=order.order_id,
        quantity_lots=instrument.qty_to_lots(order.quantity),
        filled_lots=instrument.qty_to_lots(order.filled_quantity),
        status=order.status,
        price_ticks=None if order.price is None else instrument.price_to_ticks(order.price),
    )


async def order_cancel_all(*, account: Account, symbol: str | None = None) -> int:
    """Asks the engine to cancel every open order of the account (in one symbol, or all): the
    recorded ones and those only the journal has yet (the engine handles their NEW before the
    CANCEL). Returns how many cancels were sent."""
    try:
        records = await journal.apending_orders(account.pk)
    except redis.RedisError as exc:
        raise Unavailable("The exchange cannot take commands right now.") from exc
    targets = {
        (record.symbol, record.order_id)
        for record in records.values()
        if symbol is None or record.symbol == symbol
    }
    targets.update(await sync_to_async(open_orders_for_cancel)(account, symbol))
    # Together: the appends of one symbol go in one pipeline.
    await asyncio.gather(
        *(
            _append(target_symbol, {"t": "cancel", "id": order_id, "acct": account.pk})
            for target_symbol, order_id in sorted(targets)
        )
    )
    return len(targets)


async def instrument_command(*, instrument: Instrument, command: str) -> None:
    """Sends HALT, RESUME or RESET to an instrument's book (staff operations)."""
    await _append(instrument.symbol, rules.book_command(command))
    # Halt and resume are stored with a bulk UPDATE (no signal): drop this process's cache now.
    _instruments.entries.clear()


async def instrument_rules_send(*, instrument: Instrument) -> None:
    """Sends an instrument's rules the engine enforces (price band, volatility guard, fees) to
    its book."""
    for command in rules.rule_commands(instrument):
        await _append(instrument.symbol, command)


# --- For synchronous callers -------------------------------------------------------------------


def _inside_transaction() -> bool:
    # A test case's own atomic blocks do not count (as Django's durable check does not count them).
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


async def _run(function, args, kwargs):
    try:
        return await function(*args, **kwargs)
    finally:
        # `async_to_sync` outside a server runs a loop of its own for the call: its Redis
        # connections end with it.
        if asyncio.get_running_loop() in AsyncToSync.loop_thread_executors:
            await journal.aclose_loop()


def redis_connection_kwargs(url: str) -> dict:
    """How a process that reads the exchange's streams beside the gateway (the agents runner)
    makes its asyncio Redis client: as the gateway's own (`journal.connection_kwargs`)."""
    return journal.connection_kwargs(url)


def blocking(function):
    """A gateway function for synchronous code (views, services, management commands). It refuses
    to run inside a database transaction: what it journals cannot be rolled back with it, so a
    service that writes the database sends commands after its commit (`transaction.on_commit`)."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        if _inside_transaction():
            raise RuntimeError(
                f"gateway.{function.__name__} inside a database transaction: journal after the "
                "commit (transaction.on_commit)."
            )
        return async_to_sync(_run)(function, args, kwargs)

    return call
