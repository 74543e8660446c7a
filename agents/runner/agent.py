"""One live agent: its configuration, strategy, random generator and the book-keeping that keeps
its `AgentState` true from the engine's events.

Nothing here does I/O: the runner feeds it events and the outcomes of its orders. Its state
starts from the database at the recorder's cursor (`load`), then follows every event after that
cursor, so cash, position and open orders are always what the engine says.
"""

from __future__ import annotations

import hashlib
import random
from decimal import Decimal

from agents.strategies import AgentState, make_strategy
from exchange.protocol.decimals import currency_decimals, decimal_str
from exchange.protocol.fees import fee_amount

OPPOSITE = {"buy": "sell", "sell": "buy"}


def derive_seed(master: int, name: str) -> int:
    """A 64-bit seed from the master seed and a name: adding or renaming one agent never changes
    another's draws."""
    digest = hashlib.sha256(f"{master}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class LiveAgent:
    def __init__(self, config, master_seed: int):
        self.name = config.name
        self.config_pk = config.pk
        self.rng = random.Random(derive_seed(master_seed, f"agent/{config.name}"))
        self.state = AgentState(max_position=int(config.account.default_max_position))
        self.cash_base = config.account.cash  # money; plus state.cash tick-lots * unit
        self.orders: dict[int, object] = {}  # exchange order id -> Order row (cancel, replace)
        self.in_flight = 0
        # Events of orders whose submission has not returned yet (the event stream can be
        # quicker than the gateway's answer): order id -> filled lots, None = done.
        self.early: dict[int, list[int | None]] = {}
        self.stopped = False  # fell below its minimum bankroll: waits for a reset or an edit
        self.sent = 0
        self.refused = 0  # by the gateway (ExchangeError)
        self.rejected = 0  # by the engine
        self.strategy = None
        self.updated_at = None
        self.apply_config(config)

    # --- configuration ---

    def apply_config(self, config) -> None:
        """Takes a (new or edited) config. A change of strategy or parameters builds a fresh
        strategy on the agent's own generator; limits (its account's) apply from the next
        order."""
        if (
            self.strategy is None
            or config.strategy != self.strategy.name
            or config.params != getattr(self, "params", None)
        ):
            self.strategy = make_strategy(config.strategy, config.params, self.rng)
            self.params = dict(config.params)
        if self.updated_at is not None and config.updated_at != self.updated_at:
            self.stopped = False  # an edit (a lower minimum bankroll, say) gets a fresh look
        self.updated_at = config.updated_at
        self.enabled = bool(config.enabled)
        self.rate = float(config.wake_rate_hz)
        self.apply_account(config.account)
        self.account_id = config.account_id
        instrument = config.instrument
        self.symbol = instrument.symbol
        self.tick_size = instrument.tick_size
        self.lot_size = instrument.lot_size
        self.unit = instrument.tick_size * instrument.lot_size  # money per tick-lot

    def apply_account(self, account) -> None:
        """Takes a fresh read of the agent's account: the gateway checks orders against it, and
        the limits live on it (maximum position, minimum bankroll, initial cash)."""
        self.account = account
        self.state.max_position = int(account.default_max_position)
        self.min_bankroll = account.min_bankroll
        self.initial_cash = account.initial_cash

    def load(self, recorded) -> None:
        """The account as the database records it at the recorder's cursor."""
        self.cash_base = recorded.account.cash
        self.state.cash = 0
        self.state.position = recorded.position_lots
        self.state.open_orders.clear()
        self.orders.clear()
        for order in recorded.open_orders:
            self.orders[order.order_id] = order
            if order.time_in_force != "gtc":
                continue  # an IOC never rests: its own events settle it
            lots = int((order.quantity - order.filled_quantity) / self.lot_size)
            ticks = int(order.price / self.tick_size)
            self.state.add_order(order.order_id, order.side, ticks, lots, None, 0)

    # --- money ---

    def cash(self) -> Decimal:
        return self.cash_base + self.state.cash * self.unit

    def equity(self, mark_ticks: float | None) -> Decimal:
        """Cash plus the position at `mark_ticks` (money)."""
        equity = self.cash()
        if mark_ticks is not None and self.state.position:
            equity += Decimal(str(mark_ticks)) * self.state.position * self.unit
        return equity

    def below_bankroll(self, mark_ticks: float | None) -> bool:
        return self.equity(mark_ticks) < self.min_bankroll

    # --- the outcome of its own submissions ---

    def submitting(self) -> None:
        self.in_flight += 1

    def submitted(self, order, place, now_ns: int) -> None:
        """The gateway took a NEW (`order` has its exchange id): a GTC order becomes an open
        order, minus whatever the events already said about it."""
        self.sent += 1
        order_id = order.order_id
        effects = self.early.pop(order_id, [])
        if place.tif == "gtc" and place.price is not None:
            remaining = place.qty
            done = False
            for effect in effects:
                if effect is None:
                    done = True
                else:
                    remaining -= effect
            if not done and remaining > 0:
                self.state.add_order(
                    order_id, place.side, place.price, remaining, place.tag, now_ns
                )
                self.orders[order_id] = order
        self._settled()

    def not_submitted(self) -> None:
        self.refused += 1
        self._settled()

    def _settled(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.early.clear()

    # --- events ---

    def on_trade(
        self, side: str, price: int, qty: int, order_id: int, wash: bool, fee_bps: int = 0
    ) -> None:
        """One side of a trade of its own. The fee is the exchange's rule at the rate the engine
        stamped on the trade (`exchange.protocol.fees`): the cash the recorder will write."""
        if fee_bps:
            self.cash_base -= fee_amount(price * qty * self.unit, fee_bps, currency_decimals())
        order = self.state.apply_trade(side, price, qty, order_id, wash=wash)
        if order is None:
            if self.in_flight:
                self.early.setdefault(order_id, []).append(qty)
        elif order.qty <= 0:
            self.orders.pop(order_id, None)

    def on_done(self, order_id: int) -> None:
        """The order no longer rests (cancelled, expired, rejected)."""
        self._ended(order_id, self.state.apply_cancel(order_id))

    def on_replaced(self, order_id: int, price: int, qty: int) -> None:
        self.state.apply_replace(order_id, price, qty)

    def on_rejected(self, command: str, order_id: int, reason: str) -> None:
        self.rejected += 1
        order = self.state.open_orders.get(order_id)
        if self.state.apply_reject(command, order_id, reason):
            self._ended(order_id, order)

    def on_reset(self) -> None:
        """The engine reset the book: flat, back to the initial cash (as the accounts are once
        the reset completes), signals forgotten. Its resting orders were cancelled by the
        events just before."""
        self.state.position = 0
        self.state.cash = 0
        self.cash_base = self.initial_cash
        self.stopped = False
        self.strategy.reset()

    def _ended(self, order_id: int, order) -> None:
        """The order `order_id` is done; `order` is what the state had open under it (None: an
        order not recorded yet — its submission has not returned — or never, such as an IOC)."""
        self.orders.pop(order_id, None)
        if order is None and self.in_flight:
            self.early.setdefault(order_id, []).append(None)

    # --- status ---

    def status(self, *, paused: bool, mark_ticks: float | None, now_ms: int) -> dict:
        if not self.enabled:
            state = "disabled"
        elif self.stopped:
            state = "stopped"
        elif paused:
            state = "paused"
        else:
            state = "running"
        status = {
            "name": self.name,
            "symbol": self.symbol,
            "strategy": self.strategy.name,
            "state": state,
            "cash": str(self.cash()),
            "equity": str(self.equity(mark_ticks)),
            "position": str(self.state.position * self.lot_size),
            "position_lots": self.state.position,
            "open_orders": len(self.state.open_orders),
            "orders_sent": self.sent,
            "refused": self.refused,
            "rejected": self.rejected,
            "ts_ms": now_ms,
        }
        report = getattr(self.strategy, "report", None)
        if report is not None:  # an execution agent: how far it is, and what it cost
            status["execution"] = self._execution(report(self.state))
        return status

    def _execution(self, report: dict) -> dict:
        """An execution agent's report with prices in money and quantities in the lot's units
        (the strategy counts ticks and lots); costs stay in basis points, rounded to 0.01."""
        out = dict(report)
        for name in ("arrival", "vwap", "average"):
            if out[name] is not None:
                out[name] = decimal_str(Decimal(repr(float(out[name]))) * self.tick_size)
        for name in ("quantity", "done", "left"):
            out[name] = decimal_str(out[name] * self.lot_size)
        for name in ("cost_vs_arrival_bps", "cost_vs_vwap_bps"):
            if out[name] is not None:
                out[name] = round(out[name], 2)
        return out
