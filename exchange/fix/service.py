"""The FIX service (`python manage.py run_fix`): FIX 4.4 messages in, gateway calls, FIX messages
out. A thin adapter, like the REST entry point: the rules, the order ids and the outcomes are the
gateway's and the engine's; this module only translates.

* **Logon** (`authenticate`): Password(554) is an API token (`acaller_for_secret`); the client's
  SenderCompID is its own choice, bound to the token's account the first time it logs on
  (`{prefix}:fix:comp:{COMPID}`), so that a session's stored messages and sequence numbers are
  never another account's.
* **Orders**: NewOrderSingle, OrderCancelRequest, OrderCancelReplaceRequest, OrderMassCancelRequest
  call `gateway.order_submit` / `order_cancel` / `order_replace` / `order_cancel_all`. A gateway
  error (`ExchangeError`) is answered at once: an ExecutionReport Rejected, an OrderCancelReject or
  a rejected OrderMassCancelReport, whose Text is the error's code and message. OrderStatusRequest
  is answered from what the session knows of the order, else from the exchange's own reads.
* **Outcomes** are the engine's, read from its sequenced output (the event streams), as the
  recorder reads them: one XREAD brings the entries of every symbol, and each private execution of
  an account with a session becomes an ExecutionReport (new, trade, canceled, expired, replaced,
  rejected) or an OrderCancelReject. Not through the bridge: the bridge fans frames out to
  browsers through the Channels layer, which takes about six Redis round trips to deliver one
  message; read here, a batch of entries costs one (`make bench-fix`: docs/benchmarks.md). A
  session that is logged out keeps receiving them: QuickFIX stores them and resends them when the
  client logs on again and asks (ResendRequest).
* **Market data**: MarketDataRequest → a full refresh (W) from the bridge's snapshot, then
  incremental refreshes (X) from the bridge's `market.{SYM}` frames: book frames are whole
  top-20 states, diffed here into new/change/delete entries; trades are new entries.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import flashbook_engine
import quickfix as fix
import quickfix44 as fix44
import redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from exchange import redis_clients
from exchange.api.authentication import acaller_for_secret
from exchange.api.throttling import aorder_rate_wait
from exchange.errors import ExchangeError, InvalidInput
from exchange.fix import sessions
from exchange.fix.sessions import FixFront, Verdict
from exchange.listing import ListingWatch
from exchange.live.bridge import market_group, snapshot_key
from exchange.live.market_state import Scale, private_events
from exchange.models import Account, OrderType, Side
from exchange.orders import gateway
from exchange.orders.progress import ends_by_expiry
from exchange.orders.rules import OrderRequest, decimal_value
from exchange.protocol.decimals import decimal_str
from exchange.protocol.keys import (
    fix_comp_key,
    instruments_key,
    instruments_version_key,
    key,
    symbol_of,
)
from exchange.selectors import instrument_get, order_find_by_client_order_id

log = logging.getLogger("flashbook.fix")

HOUSEKEEPING = 20.0  # seconds between clean-ups of what the sessions no longer need
# Seconds between looks at the tokens sessions logged on with: a revoked token (or a deactivated
# user) ends its session within about this long, as it stops a REST client within a second.
TOKEN_CHECK = 2.0
REFUSED_TOKEN = "Invalid or revoked token."
READ_BLOCK_MS = 200  # the event streams' XREAD waits at most this long (then sees new symbols)
EARLY_KEEP = 10.0  # seconds an execution for an order not known yet is kept for it
# Seconds a session keeps an order that has ended (for status requests and late cancels; after
# that the exchange's reads answer them, and its gateway refuses a ClOrdID used before).
DONE_KEEP = 120.0
AVG_PLACES = Decimal("1E-8")

# FIX values <-> the gateway's.
SIDES = {"1": Side.BUY, "2": Side.SELL}
FIX_SIDES = {Side.BUY: "1", Side.SELL: "2"}
ORD_TYPES = {"1": OrderType.MARKET, "2": OrderType.LIMIT}
FIX_ORD_TYPES = {OrderType.MARKET: "1", OrderType.LIMIT: "2"}
# Day orders are GTC orders: the exchange trades around the clock and has no session end.
TIFS = {"0": "gtc", "1": "gtc", "3": "ioc", "4": "fok"}
FIX_TIFS = {"gtc": "1", "ioc": "3", "fok": "4"}
POST_ONLY = "6"  # ExecInst: Participate don't initiate
DONE = {"2": "filled", "4": "cancelled", "8": "rejected", "C": "expired"}  # by OrdStatus

# OrdRejReason(103), FIX 4.4's values, from the gateway's error codes and the engine's reasons;
# anything else is 99 (Other) and the Text says which.
REJECT_REASONS = {
    "unknown_symbol": "1",
    "instrument_disabled": "2",
    "instrument_halted": "2",
    "BOOK_HALTED": "2",
    "VOLATILITY_PAUSE": "2",
    "insufficient_funds": "3",
    "POSITION_LIMIT": "3",
    "DUPLICATE_ORDER_ID": "6",
    "duplicate_client_order_id": "6",
    "INVALID_QUANTITY": "13",
    "INVALID_TIME_IN_FORCE": "11",
    "INVALID_POST_ONLY": "11",
    "unsupported": "11",
}


def _text(exc: ExchangeError) -> str:
    return f"{exc.code}: {exc.message}"


def _now() -> fix.TransactTime:
    return fix.TransactTime()


@dataclass
class OrderState:
    """An order entered through a session, as its ExecutionReports describe it."""

    session: SessionState
    clordid: str
    symbol: str
    side: str
    ord_type: str
    tif: str
    price: str | None
    qty: Decimal
    post_only: bool = False
    order_id: int | None = None
    record: object = None  # the gateway's journal record: what cancel and replace take
    cum: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    status: str = "A"  # OrdStatus: pending new until the engine accepts it
    placed: asyncio.Future | None = None
    done_at: float | None = None  # when it ended (monotonic); the session forgets it later
    # Cancels and replaces sent to the engine and not answered yet, oldest first: the engine
    # answers them in order.
    cancels: collections.deque = field(default_factory=collections.deque)
    replaces: collections.deque = field(default_factory=collections.deque)

    @property
    def leaves(self) -> Decimal:
        return Decimal(0) if self.status in ("2", "4", "8", "C") else self.qty - self.cum

    @property
    def avg_px(self) -> str:
        if not self.cum:
            return "0"
        return decimal_str((self.notional / self.cum).quantize(AVG_PLACES))


@dataclass
class SessionState:
    comp_id: str
    session_id: fix.SessionID
    account: Account
    user_id: int
    secret: str = field(default="", repr=False)  # the token it logged on with, checked again
    logged_on: bool = True
    orders: dict[str, OrderState] = field(default_factory=dict)  # by every ClOrdID it had
    md: dict[str, MarketSubscription] = field(default_factory=dict)  # by MDReqID


@dataclass
class MarketSubscription:
    session: SessionState
    req_id: str
    symbol: str
    depth: int  # 0: the whole book the feed has
    types: frozenset[str]  # MDEntryType: 0 bid, 1 offer, 2 trade


@dataclass
class MarketFeed:
    """One symbol's book as the bridge's frames tell it, and who subscribed."""

    symbol: str
    seq: int = -1
    bids: list = field(default_factory=list)
    asks: list = field(default_factory=list)
    trades: list = field(default_factory=list)
    subscriptions: list[MarketSubscription] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class FixService(sessions.Handler):
    def __init__(self, *, port: int, comp_id: str, store_dir: Path, host: str = "0.0.0.0") -> None:
        self.front = FixFront(self, port=port, comp_id=comp_id, store_dir=store_dir, host=host)
        self.sessions: dict[str, SessionState] = {}
        self.orders: dict[int, OrderState] = {}  # by exchange order id
        self.early: dict[int, list] = {}  # executions of orders whose id is not known yet
        self.accounts: set[int] = set()  # accounts with a session: their executions are read
        self.cursors: dict[str, str] = {}  # the event stream's last entry read, by symbol
        self.scales: dict[str, Scale] = {}  # how the executions write a symbol's numbers
        self.markets: dict[str, MarketFeed] = {}
        self.instruments: dict[str, object] = {}  # for ticks and lots (`_update_record`)
        self.layer = get_channel_layer()
        self.instance = uuid.uuid4().hex[:12]
        self.channels: dict[str, str] = {}  # group -> this process's channel in it
        self.redis: aioredis.Redis | None = None
        self.tasks: list[asyncio.Task] = []
        self.running: set[asyncio.Future] = set()  # the messages being handled
        self._exec_ids = 0

    # -- running -------------------------------------------------------------------------------

    async def start(self) -> None:
        # Every order goes through the gateway's append, which needs one server for now, and its
        # outcomes come from one XREAD across the symbols' slots (docs/deploy.md).
        redis_clients.require_single_server("The FIX acceptor")
        self.redis = redis_clients.aclient()
        await self.front.start()
        listing = ListingWatch()
        listing.moved(await self.redis.get(instruments_version_key()))  # as of the start
        await self._track_listed()
        self._task(self._read_executions(), "executions")
        self._task(self._listing(listing), "listing")
        self._task(self._housekeeping(), "housekeeping")
        self._task(self._check_tokens(), "tokens")

    def _task(self, coroutine, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        task.add_done_callback(_log_failure)
        self.tasks.append(task)

    async def _join(self, group: str) -> None:
        """Joins a group with a channel of its own, read by a task of its own. One channel per
        group rather than one for all: channels-redis reads a message in about six round trips,
        one message at a time per channel, and through one channel that capped the executions
        this process took in at a few hundred a second; channels of their own are read side
        by side."""
        channel = self.channels.get(group)
        if channel is None:
            channel = self.channels[group] = f"fix.{self.instance}.{group}"
            self._task(self._receive(channel), f"receive {group}")
        await self.layer.group_add(group, channel)

    async def _leave(self, group: str) -> None:
        channel = self.channels.get(group)
        if channel is not None:
            await self.layer.group_discard(group, channel)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for group in list(self.channels):
            await self._leave(group)  # the bridge counts a market's listeners by its group
        await self.front.stop()
        if self.redis is not None:
            await self.redis.aclose()

    @property
    def port(self) -> int:
        return self.front.port

    # -- logon ---------------------------------------------------------------------------------

    async def authenticate(self, comp_id: str, password: str) -> Verdict:
        caller = await acaller_for_secret(password) if password else None
        if caller is None:
            return Verdict(None, REFUSED_TOKEN)
        account_id = caller.account.pk
        # A SenderCompID belongs to the first account that logs on with it: its session's
        # stored messages are that account's.
        key = fix_comp_key(comp_id)
        await self.redis.set(key, account_id, nx=True)
        owner = await self.redis.get(key)
        if owner is None or int(owner) != account_id:
            return Verdict(None, f"SenderCompID {comp_id} is another account's: choose another.")
        self.accounts.add(account_id)
        state = self.sessions.get(comp_id)
        if state is None or state.account.pk != account_id:
            state = self.sessions[comp_id] = SessionState(
                comp_id=comp_id,
                session_id=fix.SessionID(sessions.BEGIN_STRING, self.front.comp_id, comp_id),
                account=caller.account,
                user_id=caller.user.pk,
                logged_on=False,
            )
        state.secret = password
        return Verdict(account_id)

    def logged_on(self, session_id, comp_id: str, account_id: int) -> None:
        state = self.sessions[comp_id]
        state.logged_on = True

    def logged_out(self, comp_id: str) -> None:
        state = self.sessions.get(comp_id)
        if state is None:
            return
        state.logged_on = False
        # Market data is for the connection; executions carry on (stored, resent on request).
        for subscription in state.md.values():
            feed = self.markets.get(subscription.symbol)
            if feed is not None and subscription in feed.subscriptions:
                feed.subscriptions.remove(subscription)
        state.md.clear()

    async def _check_tokens(self) -> None:
        """Ends the sessions whose token was revoked (or whose user was deactivated) since they
        logged on: the token is the session's authority, as it is a REST client's for each call.
        Another logon with it is refused at the front port."""
        while True:
            await asyncio.sleep(TOKEN_CHECK)
            for state in list(self.sessions.values()):
                if not state.logged_on or not state.secret:
                    continue
                try:
                    caller = await acaller_for_secret(state.secret)
                except Exception:  # the database is away: keep the session, look again later
                    log.warning("fix: the token of %s cannot be checked now", state.comp_id)
                    continue
                if caller is None or caller.account.pk != state.account.pk:
                    session = fix.Session.lookupSession(state.session_id)
                    if session is not None and session.isLoggedOn():
                        log.info("fix: %s's token was revoked: logging it out", state.comp_id)
                        session.logout(REFUSED_TOKEN)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING)
            now = time.monotonic()
            for order_id, held in list(self.early.items()):
                if now - held[0][0] > EARLY_KEEP:
                    del self.early[order_id]
            for state in self.sessions.values():
                for name, order in list(state.orders.items()):
                    if order.done_at is not None and now - order.done_at > DONE_KEEP:
                        del state.orders[name]

    # -- QuickFIX's thread -> the loop ---------------------------------------------------------

    def message(self, comp_id: str, msg_type: str, message: fix.Message) -> None:
        fields = _fields(message, msg_type)
        self.front.loop.call_soon_threadsafe(self._dispatch, comp_id, msg_type, fields)

    def _dispatch(self, comp_id: str, msg_type: str, fields: dict) -> None:
        state = self.sessions.get(comp_id)
        if state is None:
            return
        handler = self._handlers.get(msg_type)
        if handler is None:
            self._business_reject(state, msg_type, fields)
            return
        task = asyncio.ensure_future(self._guarded(handler, state, fields, msg_type))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _guarded(self, handler, state: SessionState, fields: dict, msg_type: str) -> None:
        try:
            await handler(self, state, fields)
        except Exception:
            log.exception("fix: handling %s from %s failed", msg_type, state.comp_id)

    def send(self, state: SessionState, message: fix.Message) -> None:
        fix.Session.sendToTarget(message, state.session_id)

    # -- order entry ---------------------------------------------------------------------------

    async def _count_against_rate(self, state: SessionState) -> None:
        """Counts an order message against the user's rate; raises when it is over."""
        wait = await aorder_rate_wait(state.user_id)
        if wait is not None:
            raise ExchangeError(
                f"Too many order messages: try again in {wait:.1f} s.", code="throttled"
            )

    async def new_order(self, state: SessionState, f: dict) -> None:
        clordid = f.get(11, "")
        try:
            request = _order_request(f)
        except ExchangeError as exc:
            self._reject_new(state, f, exc)
            return
        if clordid in state.orders:
            exc = InvalidInput(
                f"ClOrdID {clordid} was used already.", code="duplicate_client_order_id"
            )
            self._reject_new(state, f, exc)
            return
        order = OrderState(
            session=state,
            clordid=clordid,
            symbol=request.symbol,
            side=request.side,
            ord_type=request.order_type,
            tif=request.time_in_force or ("gtc" if request.order_type == "limit" else "ioc"),
            price=f.get(44) if request.order_type == OrderType.LIMIT else None,
            qty=request.quantity,
            post_only=request.post_only,
            placed=asyncio.get_running_loop().create_future(),
        )
        state.orders[clordid] = order
        try:
            await self._count_against_rate(state)
            await self._track(request.symbol)  # before the order: none of its events is missed
            outcome = await gateway.order_submit(account=state.account, request=request)
        except ExchangeError as exc:
            del state.orders[clordid]
            order.placed.set_result(None)
            self._reject_new(state, f, exc)
            return
        except Exception as exc:
            del state.orders[clordid]
            order.placed.set_result(None)
            log.exception("fix: order_submit failed")
            self._reject_new(state, f, ExchangeError(str(exc), code="server_error"))
            return
        order.order_id = outcome.order_id
        order.record = outcome.record
        order.placed.set_result(order.order_id)
        if not outcome.created:
            # A retry of a client order id the account used already (through any entry point).
            exc = InvalidInput(
                f"ClOrdID {clordid} names order {outcome.order_id} already.",
                code="duplicate_client_order_id",
            )
            del state.orders[clordid]
            self._reject_new(state, f, exc)
            return
        self.orders[order.order_id] = order
        for _, symbol, event in self.early.pop(order.order_id, ()):
            self._execution(order, symbol, event)

    async def _find(self, state: SessionState, f: dict) -> OrderState | None:
        """The order a cancel, replace or status request names: by OrigClOrdID (ClOrdID for a
        status request) among the session's, else by OrderID(37); else the exchange's reads."""
        clordid = f.get(41) or f.get(11, "")
        order = state.orders.get(clordid)
        if order is None and f.get(37, "").isdigit():
            order = self.orders.get(int(f[37]))
            if order is not None and order.session is not state:
                order = None
        if order is not None:
            if order.placed is not None and not order.placed.done():
                await asyncio.shield(order.placed)  # its NewOrderSingle is still on its way
            return order if order.order_id is not None else None
        found = await sync_to_async(order_find_by_client_order_id)(
            account=state.account, client_order_id=clordid
        )
        if found is None:
            return None
        return self._adopt(state, found)

    def _adopt(self, state: SessionState, found) -> OrderState:
        """An order the session did not enter in this process's life (entered before a restart,
        or through another entry point), as the exchange records it."""
        instrument = found.instrument
        order = OrderState(
            session=state,
            clordid=found.client_order_id,
            symbol=instrument.symbol,
            side=found.side,
            ord_type=found.order_type,
            tif=found.time_in_force,
            price=None if found.price is None else str(found.price),
            qty=Decimal(found.quantity),
            post_only=found.post_only,
            order_id=found.order_id,
            record=found,
            cum=Decimal(found.filled_quantity),
            status=_STATUS_OF_ORDER.get(found.status, "0"),
        )
        if found.average_fill_price is not None:
            order.notional = Decimal(found.average_fill_price) * order.cum
        state.orders.setdefault(order.clordid, order)
        if order.order_id is not None:
            self.orders.setdefault(order.order_id, order)
        return order

    async def _order_to_change(self, state: SessionState, f: dict, to: str) -> OrderState | None:
        """The open order a cancel (`to` "1") or a replace ("2") names; None once it is refused
        with an OrderCancelReject (unknown, or no longer open)."""
        order = await self._find(state, f)
        if order is None:
            self._cancel_reject(state, f, None, "1", "unknown_order: No such order.", to)
            return None
        if order.status in DONE:
            text = f"order_not_open: The order is {DONE[order.status]}."
            self._cancel_reject(state, f, order, "0", text, to)
            return None
        self.orders[order.order_id] = order  # the engine's answer comes back to it
        return order

    async def cancel(self, state: SessionState, f: dict) -> None:
        order = await self._order_to_change(state, f, "1")
        if order is None:
            return
        try:
            await self._count_against_rate(state)
            order.cancels.append(f.get(11, ""))
            await gateway.order_cancel(account=state.account, order=order.record)
        except ExchangeError as exc:
            if order.cancels and order.cancels[-1] == f.get(11, ""):
                order.cancels.pop()
            self._cancel_reject(state, f, order, "0", _text(exc))
            return
        state.orders.setdefault(f.get(11, ""), order)

    async def replace(self, state: SessionState, f: dict) -> None:
        order = await self._order_to_change(state, f, "2")
        if order is None:
            return
        try:
            await self._count_against_rate(state)
            # OrderQty is the order's new total; the gateway takes the new remaining quantity.
            quantity = None
            if 38 in f:
                quantity = decimal_value(f[38], "quantity") - order.cum
                if quantity <= 0:
                    raise InvalidInput(
                        f"OrderQty must be above the quantity filled ({order.cum}).",
                        field="quantity",
                        code="invalid_quantity",
                    )
            price = decimal_value(f[44], "price") if 44 in f else None
            order.replaces.append(f.get(11, ""))
            await gateway.order_replace(
                account=state.account, order=order.record, price=price, quantity=quantity
            )
        except ExchangeError as exc:
            if order.replaces and order.replaces[-1] == f.get(11, ""):
                order.replaces.pop()
            self._cancel_reject(state, f, order, "0", _text(exc), "2")
            return
        state.orders.setdefault(f.get(11, ""), order)

    async def status(self, state: SessionState, f: dict) -> None:
        order = await self._find(state, f)
        if order is None:
            message = _execution_report("I", "8")
            message.setField(37, f.get(37) or "NONE")
            message.setField(11, f.get(11, ""))
            message.setField(55, f.get(55, ""))
            message.setField(54, f.get(54, "1"))
            for tag, value in ((151, "0"), (14, "0"), (6, "0")):
                message.setField(tag, value)
            message.setField(58, "unknown_order: No such order.")
            message.setField(17, self._exec_id("status"))
            self.send(state, message)
            return
        message = self._report(order, "I", self._exec_id("status"))
        if 790 in f:
            message.setField(790, f[790])  # OrdStatusReqID
        self.send(state, message)

    async def mass_cancel(self, state: SessionState, f: dict) -> None:
        kind = f.get(530, "")
        report = fix.Message()
        report.getHeader().setField(35, "r")
        report.setField(11, f.get(11, ""))
        report.setField(37, f.get(11, "") or "NONE")
        report.setField(530, kind or "7")
        try:
            if kind not in ("1", "7"):
                raise InvalidInput(
                    "MassCancelRequestType must be 1 (a symbol) or 7 (all orders).",
                    code="unsupported",
                )
            await self._count_against_rate(state)
            symbol = f.get(55) if kind == "1" else None
            count = await gateway.order_cancel_all(account=state.account, symbol=symbol)
        except ExchangeError as exc:
            report.setField(531, "0")  # rejected
            report.setField(532, "1" if exc.code == "unknown_symbol" else "99")
            report.setField(58, _text(exc))
            self.send(state, report)
            return
        report.setField(531, kind)
        report.setField(533, str(count))
        if kind == "1":
            report.setField(55, f.get(55, ""))
        self.send(state, report)

    _handlers = {
        "D": new_order,
        "F": cancel,
        "G": replace,
        "H": status,
        "q": mass_cancel,
    }

    # -- answers -------------------------------------------------------------------------------

    def _exec_id(self, kind: str) -> str:
        self._exec_ids += 1
        return f"{kind}-{time.time_ns() // 1000}-{self._exec_ids}"

    def _reject_new(self, state: SessionState, f: dict, exc: ExchangeError) -> None:
        message = _execution_report("8", "8")
        message.setField(37, "NONE")
        message.setField(11, f.get(11, ""))
        message.setField(55, f.get(55, ""))
        message.setField(54, f.get(54, "1") if f.get(54) in SIDES else "1")
        if f.get(40) in ORD_TYPES:
            message.setField(40, f[40])
        if 38 in f:
            message.setField(38, f[38])
        for tag, value in ((151, "0"), (14, "0"), (6, "0")):
            message.setField(tag, value)
        message.setField(103, REJECT_REASONS.get(exc.code, "99"))
        message.setField(58, _text(exc))
        message.setField(17, self._exec_id("rej"))
        self.send(state, message)

    def _cancel_reject(
        self, state, f: dict, order: OrderState | None, reason: str, text: str, to: str = "1"
    ) -> None:
        message = fix.Message()
        message.getHeader().setField(35, "9")
        message.setField(37, str(order.order_id) if order and order.order_id else "NONE")
        message.setField(11, f.get(11, ""))
        message.setField(41, f.get(41) or (order.clordid if order else "NONE"))
        message.setField(39, order.status if order else "8")
        message.setField(434, to)  # CxlRejResponseTo: 1 cancel, 2 replace
        message.setField(102, reason)  # CxlRejReason: 0 too late, 1 unknown order
        message.setField(58, text)
        self.send(state, message)

    def _business_reject(self, state: SessionState, msg_type: str, f: dict) -> None:
        message = fix.Message()
        message.getHeader().setField(35, "j")
        message.setField(45, f.get(34, "0"))
        message.setField(372, msg_type)
        message.setField(380, "3")  # unsupported message type
        message.setField(58, f"Message type {msg_type} is not supported.")
        self.send(state, message)

    def _report(self, order: OrderState, exec_type: str, exec_id: str) -> fix.Message:
        message = _execution_report(exec_type, order.status)
        message.setField(37, str(order.order_id))
        message.setField(11, order.clordid)
        message.setField(17, exec_id)
        message.setField(55, order.symbol)
        message.setField(54, FIX_SIDES[order.side])
        message.setField(40, FIX_ORD_TYPES[order.ord_type])
        if order.price is not None:
            message.setField(44, order.price)
        message.setField(59, FIX_TIFS.get(order.tif, "1"))
        if order.post_only:
            message.setField(18, POST_ONLY)
        message.setField(38, decimal_str(order.qty))
        message.setField(151, decimal_str(order.leaves))
        message.setField(14, decimal_str(order.cum))
        message.setField(6, order.avg_px)
        return message

    # -- the engine's outcomes -----------------------------------------------------------------

    async def _track_listed(self) -> None:
        """Every listed symbol, its rules read again (a tick or lot may have changed)."""
        symbols = await self.redis.smembers(instruments_key())
        for symbol in sorted(s.decode() for s in symbols):
            await self._track(symbol, reload=True)

    async def _listing(self, listing: ListingWatch) -> None:
        """Takes on a newly listed instrument's event stream when the listing's counter moves."""
        while True:
            await asyncio.sleep(listing.interval)
            if listing.moved(await self.redis.get(instruments_version_key())):
                await self._track_listed()

    async def _track(self, symbol: str, *, reload: bool = False) -> None:
        """Reads `symbol`'s event stream from its current end on (an order of a session is sent
        only after this: its events come later). An unknown symbol is left to the gateway's
        refusal."""
        if symbol in self.cursors and not reload:
            return
        instrument = await sync_to_async(instrument_get)(symbol)
        if instrument is None:
            return
        self.instruments[symbol] = instrument
        self.scales[symbol] = Scale(instrument.tick_size, instrument.lot_size)
        if symbol not in self.cursors:
            last = await self.redis.xrevrange(key("evt", symbol), count=1)
            self.cursors.setdefault(symbol, last[0][0].decode() if last else "0-0")

    async def _read_executions(self) -> None:
        """The engine's outcomes for the accounts with a session, from every tracked symbol's
        event stream (plain XREAD from the cursors: a reader of the engine's output, as the
        recorder and the bridge are)."""
        reader = redis_clients.aclient()
        try:
            while True:
                if not self.cursors:
                    await asyncio.sleep(READ_BLOCK_MS / 1000)
                    continue
                streams = {key("evt", s): cursor for s, cursor in self.cursors.items()}
                try:
                    replies = await reader.xread(streams, count=500, block=READ_BLOCK_MS)
                except redis.RedisError:
                    log.warning("fix: reading the event streams failed; again", exc_info=True)
                    await asyncio.sleep(0.5)
                    continue
                for stream, entries in replies or []:
                    symbol = symbol_of(stream, "evt")
                    self.cursors[symbol] = entries[-1][0].decode()
                    if self.accounts:
                        try:
                            self._entries(symbol, entries)
                        except Exception:  # one bad entry must not stop the others
                            log.exception("fix: %s's events %r failed", symbol, entries[0][0])
        finally:
            await reader.aclose()

    def _entries(self, symbol: str, entries) -> None:
        scale = self.scales[symbol]
        for _, fields in entries:
            events = flashbook_engine.decode_events(fields[b"e"].decode())
            for mine in private_events(events, scale, self.accounts).values():
                self._executions(symbol, mine)

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                event = await self.layer.receive(channel)
            except redis.TimeoutError:
                continue  # channels-redis's blocking pop outlived the connection's timeout
            except redis.RedisError:
                log.warning("fix: the channel layer failed; receiving again", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            try:
                if event["type"] == "market.frame":
                    await self._market_frame(event)
            except Exception:  # one bad frame must not stop the others
                log.exception("fix: a frame failed: %r", event)

    def _executions(self, symbol: str, events: list[dict]) -> None:
        for event in events:
            order = self.orders.get(event["order_id"])
            if order is None:
                # Its NewOrderSingle may not have come back from the gateway yet.
                held = self.early.setdefault(event["order_id"], [])
                held.append((time.monotonic(), symbol, event))
                continue
            self._execution(order, symbol, event)

    def _execution(self, order: OrderState, symbol: str, event: dict) -> None:
        kind = event["kind"]
        exec_id = f"{symbol}-{event['seq']}-{order.order_id}"
        state = order.session
        if kind == "accepted":
            order.status = "0"
            self.send(state, self._report(order, "0", exec_id))
        elif kind == "trade":
            qty, price = Decimal(event["qty"]), Decimal(event["price"])
            order.cum += qty
            order.notional += qty * price
            remaining = Decimal(event["remaining"])
            order.qty = order.cum + remaining
            order.status = "2" if remaining <= 0 else "1"
            message = self._report(order, "F", exec_id)
            message.setField(31, event["price"])
            message.setField(32, event["qty"])
            self.send(state, message)
        elif kind == "cancelled":
            expired = ends_by_expiry(event["reason"])
            order.status = "C" if expired else "4"
            message = self._report(order, "C" if expired else "4", exec_id)
            if order.cancels:
                message.setField(41, order.clordid)
                message.setField(11, order.cancels.popleft())
            if event["reason"] != "USER":
                message.setField(58, event["reason"])
            self.send(state, message)
            self._forget(order)
        elif kind == "replaced":
            new_clordid = order.replaces.popleft() if order.replaces else order.clordid
            previous = order.clordid
            order.clordid = new_clordid
            order.price = event["price"] if order.ord_type == OrderType.LIMIT else None
            order.qty = order.cum + Decimal(event["qty"])
            order.status = "1" if order.cum else "0"
            _update_record(order, event, self.instruments.get(order.symbol))
            message = self._report(order, "5", exec_id)
            message.setField(41, previous)
            self.send(state, message)
        elif kind == "rejected":
            command = event["command"]
            if command == "new":
                order.status = "8"
                message = self._report(order, "8", exec_id)
                message.setField(103, REJECT_REASONS.get(event["reason"], "99"))
                message.setField(58, event["reason"])
                self.send(state, message)
                self._forget(order)
            elif command in ("cancel", "replace"):
                pending = order.cancels if command == "cancel" else order.replaces
                clordid = pending.popleft() if pending else order.clordid
                fields = {11: clordid, 41: order.clordid}
                reason = "1" if event["reason"] == "UNKNOWN_ORDER" else "0"
                to = "1" if command == "cancel" else "2"
                self._cancel_reject(state, fields, order, reason, event["reason"], to)

    def _forget(self, order: OrderState) -> None:
        """An order that is done: out of the live index at once, out of its session's orders
        DONE_KEEP seconds later (`_keep_watch`)."""
        self.orders.pop(order.order_id, None)
        order.done_at = time.monotonic()

    # -- market data ---------------------------------------------------------------------------

    async def market_data(self, state: SessionState, f: dict) -> None:
        req_id = f.get(262, "")
        kind = f.get(263, "0")
        if kind == "2":  # unsubscribe
            subscription = state.md.pop(req_id, None)
            if subscription is not None:
                feed = self.markets.get(subscription.symbol)
                if feed is not None and subscription in feed.subscriptions:
                    feed.subscriptions.remove(subscription)
            return
        symbols = f.get("symbols") or []
        types = frozenset(f.get("types") or ("0", "1", "2"))
        try:
            depth = int(f.get(264, "0"))
        except ValueError:
            depth = -1
        if kind not in ("0", "1") or depth < 0 or not symbols or len(symbols) != 1:
            self._md_reject(state, req_id, "Ask for one symbol, snapshot (0) or updates (1).")
            return
        if req_id in state.md:
            self._md_reject(state, req_id, f"MDReqID {req_id} is in use.", reason="1")
            return
        if not types <= {"0", "1", "2"}:
            self._md_reject(state, req_id, "MDEntryType: 0, 1 or 2.", reason="8")
            return
        symbol = symbols[0]
        feed = await self._feed(symbol)
        if feed is None:
            self._md_reject(state, req_id, f"unknown_symbol: no market data for {symbol}.")
            return
        subscription = MarketSubscription(state, req_id, symbol, depth, types)
        self.send(state, self._full_refresh(feed, subscription))
        if kind == "1":
            state.md[req_id] = subscription
            feed.subscriptions.append(subscription)

    async def _feed(self, symbol: str) -> MarketFeed | None:
        feed = self.markets.get(symbol)
        if feed is None:
            feed = self.markets[symbol] = MarketFeed(symbol)
            # Join first, then read the snapshot: every frame is in it or still to come.
            await self._join(market_group(symbol))
            if not await self._seed(feed):
                del self.markets[symbol]
                await self._leave(market_group(symbol))
                return None
            feed.ready.set()
        await feed.ready.wait()
        return feed

    async def _seed(self, feed: MarketFeed) -> bool:
        raw = await self.redis.get(snapshot_key(feed.symbol))
        if raw is None:
            return False
        snapshot = json.loads(raw)
        feed.seq = snapshot["seq"]
        feed.bids, feed.asks = snapshot["bids"], snapshot["asks"]
        feed.trades = snapshot.get("trades", [])[-20:]
        return True

    async def _market_frame(self, event: dict) -> None:
        frame = json.loads(event["text"])
        feed = self.markets.get(frame.get("symbol"))
        if feed is None or not feed.ready.is_set():
            return
        if event["seq"] <= feed.seq and event["prev"] != feed.seq:
            return  # already in the snapshot
        if event["prev"] != feed.seq:
            # Frames were lost on the way: start every subscriber over from a new snapshot.
            if await self._seed(feed):
                for subscription in feed.subscriptions:
                    self.send(subscription.session, self._full_refresh(feed, subscription))
            return
        feed.seq = event["seq"]
        if frame["type"] == "book":
            old_bids, old_asks = feed.bids, feed.asks
            feed.bids, feed.asks = frame["bids"], frame["asks"]
            for subscription in feed.subscriptions:
                entries = []
                depth = subscription.depth or None
                if "0" in subscription.types:
                    entries += _diff("0", old_bids[:depth], feed.bids[:depth])
                if "1" in subscription.types:
                    entries += _diff("1", old_asks[:depth], feed.asks[:depth])
                if entries:
                    self.send(subscription.session, _incremental(subscription, entries))
        elif frame["type"] == "trades":
            feed.trades = (feed.trades + frame["trades"])[-20:]
            entries = [("0", "2", t["price"], t["qty"]) for t in frame["trades"]]
            for subscription in feed.subscriptions:
                if "2" in subscription.types:
                    self.send(subscription.session, _incremental(subscription, entries))

    def _full_refresh(self, feed: MarketFeed, subscription: MarketSubscription) -> fix.Message:
        message = fix.Message()
        message.getHeader().setField(35, "W")
        message.setField(262, subscription.req_id)
        message.setField(55, feed.symbol)
        depth = subscription.depth or None
        entries = []
        if "0" in subscription.types:
            entries += [("0", p, q) for p, q in feed.bids[:depth]]
        if "1" in subscription.types:
            entries += [("1", p, q) for p, q in feed.asks[:depth]]
        if "2" in subscription.types:
            entries += [("2", t["price"], t["qty"]) for t in feed.trades[-1:]]
        message.setField(268, str(len(entries)))
        for entry_type, price, qty in entries:
            group = fix44.MarketDataSnapshotFullRefresh.NoMDEntries()
            group.setField(269, entry_type)
            group.setField(270, price)
            group.setField(271, qty)
            message.addGroup(group)
        return message

    def _md_reject(self, state: SessionState, req_id: str, text: str, reason: str = "0") -> None:
        message = fix.Message()
        message.getHeader().setField(35, "Y")
        message.setField(262, req_id)
        message.setField(281, reason)  # MDReqRejReason: 0 unknown symbol, 1 duplicate MDReqID
        message.setField(58, text)
        self.send(state, message)

    _handlers["V"] = market_data


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("fix: the %s task failed", task.get_name(), exc_info=task.exception())


# -- FIX fields in, requests out --------------------------------------------------------------

_COPIED = {
    "D": (11, 55, 54, 38, 40, 44, 59, 18, 1),
    "F": (11, 41, 37, 55, 54, 38),
    "G": (11, 41, 37, 55, 54, 38, 40, 44, 59, 18),
    "H": (11, 37, 55, 54, 790),
    "q": (11, 530, 55),
    "V": (262, 263, 264, 265),
}


def _fields(message: fix.Message, msg_type: str) -> dict:
    """What the adapter reads of a message, copied out of QuickFIX's (valid only during the
    callback) on QuickFIX's thread."""
    fields: dict = {34: message.getHeader().getField(34)}
    for tag in _COPIED.get(msg_type, ()):
        if message.isSetField(tag):
            fields[tag] = message.getField(tag)
    if msg_type == "V":
        types, symbols = [], []
        group = fix44.MarketDataRequest.NoMDEntryTypes()
        for i in range(1, int(message.getField(267)) + 1 if message.isSetField(267) else 1):
            message.getGroup(i, group)
            types.append(group.getField(269))
        group = fix44.MarketDataRequest.NoRelatedSym()
        for i in range(1, int(message.getField(146)) + 1 if message.isSetField(146) else 1):
            message.getGroup(i, group)
            symbols.append(group.getField(55))
        fields["types"], fields["symbols"] = types, symbols
    return fields


def _order_request(f: dict) -> OrderRequest:
    """The gateway's request from a NewOrderSingle's fields (FIX's vocabulary to the gateway's;
    the rules themselves are the gateway's)."""
    side = SIDES.get(f.get(54, ""))
    if side is None:
        raise InvalidInput("Side must be 1 (buy) or 2 (sell).", field="side", code="unsupported")
    order_type = ORD_TYPES.get(f.get(40, ""))
    if order_type is None:
        raise InvalidInput(
            "OrdType must be 1 (market) or 2 (limit).", field="type", code="unsupported"
        )
    tif = None
    if 59 in f:
        tif = TIFS.get(f[59])
        if tif is None:
            raise InvalidInput(
                "TimeInForce must be 0 (day), 1 (GTC), 3 (IOC) or 4 (FOK).",
                field="time_in_force",
                code="unsupported",
            )
    instructions = f.get(18, "").split()
    if any(value != POST_ONLY for value in instructions):
        raise InvalidInput(
            "ExecInst: only 6 (participate don't initiate: post-only) is supported.",
            field="post_only",
            code="unsupported",
        )
    if 38 not in f:
        raise InvalidInput("OrderQty is required.", field="quantity", code="required")
    price = None
    if order_type == OrderType.LIMIT:
        if 44 not in f:
            raise InvalidInput("A limit order needs a Price.", field="price", code="required")
        price = decimal_value(f[44], "price")
    return OrderRequest(
        symbol=f.get(55, ""),
        side=side,
        quantity=decimal_value(f[38], "quantity"),
        order_type=order_type,
        time_in_force=tif,
        price=price,
        post_only=bool(instructions),
        client_order_id=f.get(11) or None,
    )


def _execution_report(exec_type: str, status: str) -> fix.Message:
    message = fix.Message()
    message.getHeader().setField(35, "8")
    message.setField(150, exec_type)
    message.setField(39, status)
    message.setField(_now())
    return message


def _update_record(order: OrderState, event: dict, instrument) -> None:
    """Keeps the gateway's journal record of a replaced order in step: a later replace of a buy
    that names only one of price and quantity is valued with the other as it stands."""
    record = order.record
    if hasattr(record, "price_ticks") and instrument is not None:
        record.price_ticks = instrument.price_to_ticks(Decimal(event["price"]))
        record.quantity_lots = instrument.qty_to_lots(Decimal(event["qty"]))


def _diff(entry_type: str, old: list, new: list) -> list[tuple[str, str, str, str]]:
    """MDUpdateAction entries (0 new, 1 change, 2 delete) taking one side's levels from `old`
    to `new` (lists of [price, qty], decimal strings)."""
    before = dict(map(tuple, old))
    after = dict(map(tuple, new))
    entries = [("2", entry_type, price, qty) for price, qty in old if price not in after]
    for price, qty in new:
        if price not in before:
            entries.append(("0", entry_type, price, qty))
        elif before[price] != qty:
            entries.append(("1", entry_type, price, qty))
    return entries


def _incremental(subscription: MarketSubscription, entries) -> fix.Message:
    message = fix.Message()
    message.getHeader().setField(35, "X")
    message.setField(262, subscription.req_id)
    message.setField(268, str(len(entries)))
    for action, entry_type, price, qty in entries:
        group = fix44.MarketDataIncrementalRefresh.NoMDEntries()
        group.setField(279, action)
        group.setField(269, entry_type)
        group.setField(55, subscription.symbol)
        group.setField(270, price)
        group.setField(271, qty)
        message.addGroup(group)
    return message


_STATUS_OF_ORDER = {
    "PENDING": "A",
    "NEW": "0",
    "PARTIALLY_FILLED": "1",
    "FILLED": "2",
    "CANCELED": "4",
    "REJECTED": "8",
    "EXPIRED": "C",
}
