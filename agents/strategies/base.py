"""The vocabulary shared by every strategy: what an agent sees, what it owns, what it may do.

Pure data and pure logic — no I/O, no Django, no Redis, no asyncio — so the same classes run in
the live runner (which submits through the gateway) and in the research simulator (which calls
the Rust book directly).

Units
-----
* **Prices** are ``int`` ticks and **quantities** ``int`` lots, exactly as the engine takes them.
  A strategy may compute with floats (a mid, a moving average, a fundamental value) but every
  price it puts into an action is a whole, positive number of ticks.
* **Cash** is an ``int`` in *tick-lots*: buying ``q`` lots at ``p`` ticks costs ``p * q``. It is
  exact (no rounding ever accumulates) and needs no instrument metadata inside the hot path. The
  runner converts at the edges: money = tick-lots * tick size * lot size (the value of one lot
  moving by one tick). Equity at a mark price ``m`` is ``cash + position * m``, in the same unit.
* **Time** is ``int`` nanoseconds (simulated or wall clock, whichever the caller runs on);
  strategy parameters are given in seconds and converted once, at construction.
* **Sides** and **times in force** are the engine's strings (``"buy"``/``"sell"``,
  ``"gtc"``/``"ioc"``/``"fok"``), so the runner passes them through without translation.

Contract between a strategy and whoever runs it
-----------------------------------------------
``decide(view, state)`` returns a list of actions to apply *in order*. The runner keeps
``state`` true: it records a GTC order in ``state.open_orders`` when it submits it (under a key of
its choosing — the order id — with the action's ``tag``), applies fills, cancels, replaces and
rejections as the events come back (``AgentState.apply_*``), and removes orders that are done.
IOC and market orders never rest, so they are not recorded as open orders. ``Cancel``/``Replace``
name orders by that key. Every random draw comes from the ``random.Random`` given to the strategy,
so a run with the same seed and the same inputs makes exactly the same decisions.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self, TypeAlias, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "BUY",
    "SELL",
    "Action",
    "AgentState",
    "Cancel",
    "MarketView",
    "OpenOrder",
    "ParamError",
    "Params",
    "Place",
    "Replace",
    "Side",
    "Strategy",
    "Trade",
    "next_wake_ns",
    "param",
]

Side: TypeAlias = Literal["buy", "sell"]
Tif: TypeAlias = Literal["gtc", "ioc", "fok"]
BUY: Side = "buy"
SELL: Side = "sell"
NS_PER_S = 1_000_000_000

#: No position limit: large enough to never bind, small enough to stay an exact int everywhere.
UNLIMITED = 2**62


# --- What the agent sees ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade in the recent-trades window."""

    time_ns: int
    price: int
    qty: int
    #: The side of the incoming (liquidity-taking) order.
    aggressor: Side


@dataclass(frozen=True, slots=True)
class MarketView:
    """An instrument's market as one agent sees it at one instant. Frozen: the simulator may hand
    the same view to several agents, and no strategy can change what another one sees.

    ``bid``/``ask`` are ``(price, qty)`` of the touch or None for an empty side; ``bids``/``asks``
    the top levels, best first (``bids[0] == bid`` when given; may be empty when the caller
    only has the BBO). ``trades`` is a short window of recent trades, oldest first.
    ``reference`` is an anchor for an empty book (the instrument's reference price, moved by
    shocks); ``fundamental`` is the true fundamental value in ticks when the environment has one
    (value agents observe it through their own noise)."""

    time_ns: int
    bid: tuple[int, int] | None = None
    ask: tuple[int, int] | None = None
    bids: Sequence[tuple[int, int]] = ()
    asks: Sequence[tuple[int, int]] = ()
    last_price: int | None = None
    trades: Sequence[Trade] = ()
    reference: int | None = None
    fundamental: float | None = None

    @classmethod
    def from_depth(
        cls,
        time_ns: int,
        bids: Sequence[tuple[int, int]],
        asks: Sequence[tuple[int, int]],
        *,
        last_price: int | None = None,
        trades: Sequence[Trade] = (),
        reference: int | None = None,
        fundamental: float | None = None,
    ) -> MarketView:
        """A view from depth lists as ``OrderBook.depth()`` returns them (best first)."""
        return cls(
            time_ns,
            bids[0] if bids else None,
            asks[0] if asks else None,
            bids,
            asks,
            last_price,
            trades,
            reference,
            fundamental,
        )

    @property
    def best_bid(self) -> int | None:
        return self.bid[0] if self.bid is not None else None

    @property
    def best_ask(self) -> int | None:
        return self.ask[0] if self.ask is not None else None

    @property
    def mid(self) -> float | None:
        """Midpoint in ticks (a half tick when the spread is odd); None unless two-sided."""
        if self.bid is None or self.ask is None:
            return None
        return (self.bid[0] + self.ask[0]) * 0.5

    @property
    def spread(self) -> int | None:
        """Ask minus bid in ticks; None unless two-sided."""
        if self.bid is None or self.ask is None:
            return None
        return self.ask[0] - self.bid[0]

    @property
    def ref_price(self) -> float | None:
        """The best available anchor: the mid, else the last trade, else the one side quoted,
        else the reference price, else the fundamental; None when there is nothing at all."""
        bid, ask = self.bid, self.ask
        if bid is not None and ask is not None:
            return (bid[0] + ask[0]) * 0.5
        if self.last_price is not None:
            return float(self.last_price)
        if bid is not None:
            return float(bid[0])
        if ask is not None:
            return float(ask[0])
        if self.reference is not None:
            return float(self.reference)
        return self.fundamental


# --- What the agent owns ---------------------------------------------------------------------


@dataclass(slots=True)
class OpenOrder:
    """One of the agent's own resting (or submitted, not yet done) GTC orders. Mutable: the
    runner lowers ``qty`` on fills and moves ``price``/``qty`` on replaces."""

    side: Side
    price: int
    #: Remaining (open) quantity in lots.
    qty: int
    #: The ``tag`` of the ``Place`` that created it (strategies use it to find their quotes).
    tag: str | None = None
    #: When it was submitted (ns); strategies use it to cancel stale orders.
    time_ns: int = 0


@dataclass(slots=True)
class AgentState:
    """The agent's own book-keeping, kept true from the engine's events by the live runner and
    the research simulator alike, through the same ``apply_*`` methods.

    ``cash`` is in tick-lots (see the module doc), ``position`` in lots (positive = long).
    ``max_position`` is the limit the engine enforces on every order, counting open orders
    (``None`` = no limit); strategies size their orders to stay inside it rather than have
    them rejected. ``open_orders`` preserves insertion order, so iteration is oldest first."""

    cash: int = 0
    position: int = 0
    open_orders: dict[Hashable, OpenOrder] = field(default_factory=dict)
    max_position: int | None = None

    # -- queries --

    def open_qty(self, side: Side) -> int:
        """Open quantity of the resting orders on ``side``."""
        return sum(o.qty for o in self.open_orders.values() if o.side == side)

    def buy_room(self) -> int:
        """Lots one more buy may add without the engine rejecting it for the position limit
        (position + open buys + qty <= max_position)."""
        if self.max_position is None:
            return UNLIMITED
        return self.max_position - self.position - self.open_qty(BUY)

    def sell_room(self) -> int:
        """Lots one more sell may add (open sells - position + qty <= max_position)."""
        if self.max_position is None:
            return UNLIMITED
        return self.max_position + self.position - self.open_qty(SELL)

    def equity(self, mark: float) -> float:
        """Cash plus the position valued at ``mark`` ticks, in tick-lots."""
        return self.cash + self.position * mark

    # -- book-keeping (called by runners and simulators, never by strategies) --

    def add_order(
        self,
        key: Hashable,
        side: Side,
        price: int,
        qty: int,
        tag: str | None = None,
        time_ns: int = 0,
    ) -> OpenOrder:
        order = OpenOrder(side, price, qty, tag, time_ns)
        self.open_orders[key] = order
        return order

    def remove_order(self, key: Hashable) -> OpenOrder | None:
        return self.open_orders.pop(key, None)

    def amend_order(self, key: Hashable, price: int, qty: int) -> None:
        """A replace took effect: the order now rests at ``price`` with ``qty`` open (as
        :meth:`apply_replace`)."""
        self.apply_replace(key, price, qty)

    def fill(self, side: Side, price: int, qty: int, key: Hashable | None = None) -> None:
        """The agent bought (``side == "buy"``) or sold ``qty`` lots at ``price``, not a wash
        trade (as :meth:`apply_trade`). When ``key`` names one of its open orders, that order's
        open quantity drops (and it is removed at zero)."""
        self.apply_trade(side, price, qty, key)

    # -- the engine's events (the one place the live runner and the simulator apply them) --

    def apply_trade(
        self, side: Side, price: int, qty: int, key: Hashable | None = None, *, wash: bool = False
    ) -> OpenOrder | None:
        """One side of a trade: the agent's order ``key`` (None for an order it does not record,
        such as an IOC) bought (``side == "buy"``) or sold ``qty`` lots at ``price``. The order's
        open quantity drops, and it is removed at zero. A wash trade (maker and taker the same
        account; each of its two sides is applied, with ``wash=True``) moves neither position
        nor cash, as the exchange's recorder books it. Returns the open order the trade was
        against (removed when its quantity is down to zero), or None when ``key`` names none."""
        if not wash:
            if side == BUY:
                self.position += qty
                self.cash -= price * qty
            else:
                self.position -= qty
                self.cash += price * qty
        if key is None:
            return None
        order = self.open_orders.get(key)
        if order is not None:
            order.qty -= qty
            if order.qty <= 0:
                del self.open_orders[key]
        return order

    def apply_cancel(self, key: Hashable | None) -> OpenOrder | None:
        """The order ``key`` no longer rests (cancelled, expired, ended by a rejection): it is
        removed. Returns it, or None when it was not an open order."""
        if key is None:
            return None
        return self.remove_order(key)

    def apply_replace(self, key: Hashable | None, price: int, qty: int) -> OpenOrder | None:
        """A replace took effect: the order ``key`` now rests at ``price`` with ``qty`` open.
        Returns it, or None when it was not an open order."""
        order = self.open_orders.get(key) if key is not None else None
        if order is not None:
            order.price = price
            order.qty = qty
        return order

    def apply_reject(self, command: str, key: Hashable | None, reason: str) -> bool:
        """The engine refused ``command`` about the order ``key``. A refused NEW never rests,
        and a command naming an order the engine does not know (``UNKNOWN_ORDER``) means the
        order is gone: both end the order, which is removed, and True is returned. Any other
        refusal (a replace over the position limit, say) leaves the order as it was: False."""
        if command == "new" or reason == "UNKNOWN_ORDER":
            self.apply_cancel(key)
            return True
        return False

    def reset(self, cash: int = 0) -> None:
        """Flat, no open orders, ``cash`` tick-lots (a simulation reset)."""
        self.cash = cash
        self.position = 0
        self.open_orders.clear()


# --- What the agent may do -------------------------------------------------------------------
#
# Actions are mutable slot classes rather than frozen ones on purpose: a market maker emits
# several per wake, and a frozen dataclass costs ~4x more to build (0.45 µs against 0.11 µs per
# Place on CPython 3.11), which is most of a decide() call. Treat them as values all the same.


@dataclass(slots=True)
class Place:
    """A new order: a limit order at ``price`` ticks, or a market order when ``price`` is None
    (market orders are always IOC). ``tag`` is the strategy's own label, kept on the open
    order."""

    side: Side
    qty: int
    price: int | None = None
    tif: Tif = "gtc"
    post_only: bool = False
    tag: str | None = None


@dataclass(slots=True)
class Cancel:
    """Cancel the open order recorded under ``key``."""

    key: Hashable


@dataclass(slots=True)
class Replace:
    """Move the open order ``key`` to ``price`` and/or set its remaining quantity to ``qty``
    (None keeps it). The engine's rules: shrinking in place keeps queue priority; a new price or
    a larger quantity loses it."""

    key: Hashable
    price: int | None = None
    qty: int | None = None


Action: TypeAlias = Place | Cancel | Replace


# --- Parameters ------------------------------------------------------------------------------


class ParamError(ValueError):
    """An invalid strategy parameter: ``field`` names it (``"__all__"`` when the parameters as a
    whole are wrong, as Django forms do) and ``message`` says why, ready for a form error."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def param(
    default: bool | int | float | str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    help: str = "",
) -> Any:
    """A parameter field: its default, inclusive bounds ``lo``/``hi`` for numbers and a help text
    for the admin form. The annotation gives the type (``Literal[...]`` for a string with a few
    allowed values)."""
    return Field(default, ge=lo, le=hi, description=help)


_KINDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def error_message(error: Mapping[str, Any]) -> str:
    """The project's wording for one of pydantic's errors (one entry of
    ``ValidationError.errors()``): "must be at least 1 (got 0)", "must be true or false, not 1"…
    An error raised by a validator as a ``ValueError`` keeps its own message."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "int_type":
        if isinstance(value, float):
            return f"must be a whole number, not {value!r}"
        return f"must be an integer, not {value!r}"
    if kind == "float_type":
        return f"must be a number, not {value!r}"
    if kind == "finite_number":
        return f"must be a finite number, not {value!r}"
    if kind == "bool_type":
        return f"must be true or false, not {value!r}"
    if kind == "string_too_short":
        return f"must be a non-empty string, not {value!r}"
    if kind == "string_type":
        return f"must be a string, not {value!r}"
    if kind == "literal_error" and not isinstance(value, str):
        return f"must be a string, not {value!r}"
    if kind == "literal_error":
        return (
            f"must be one of {ctx['expected'].replace(chr(39), '').replace(' or ', ', ')} "
            f"(got {value!r})"
        )
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']} (got {value})"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']} (got {value})"
    if kind in ("dict_type", "model_type", "dataclass_type"):
        return f"must be a mapping, not {type(value).__name__}"
    if kind == "list_type":
        return "must be a list"
    if kind == "missing":
        return "is required"
    if kind == "value_error" and isinstance(ctx.get("error"), ValueError):
        return str(ctx["error"])
    return error["msg"]


class Params(BaseModel):
    """Base of every strategy's parameters: a frozen pydantic model whose fields are declared with
    :func:`param`. Construction checks types and bounds strictly (an ``int`` is accepted where a
    float is expected, never the reverse; ``bool`` is not a number; no NaN), then the cross-field
    rules of :meth:`check`, and raises :class:`ParamError` naming the first bad field;
    :meth:`validate` builds one from a plain mapping (an admin form's JSON)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise _param_error(type(self), error) from None

    @model_validator(mode="after")
    def _check(self) -> Self:
        self.check()
        return self

    def check(self) -> None:
        """Cross-field rules; raise :class:`ParamError` naming the offending field."""

    @classmethod
    def validate(cls, data: Mapping[str, Any] | Params | None) -> Self:  # type: ignore[override]
        """Parameters from a mapping: missing keys take their defaults; an unknown key, a wrong
        type or a value out of bounds raises :class:`ParamError` naming the field."""
        if data is None:
            return cls()
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise ParamError("__all__", f"parameters must be a mapping, not {type(data).__name__}")
        return cls(**{str(k): v for k, v in data.items()})

    @classmethod
    def schema(cls) -> list[dict[str, Any]]:  # type: ignore[override]
        """One entry per parameter — name, type, default, bounds, choices, help — for forms and
        documentation."""
        out = []
        for name, f in cls.model_fields.items():
            bounds = {"min": None, "max": None}
            for m in f.metadata:
                if isinstance(m, annotated_types.Ge):
                    bounds["min"] = m.ge
                elif isinstance(m, annotated_types.Le):
                    bounds["max"] = m.le
            choices = list(get_args(f.annotation)) if get_origin(f.annotation) is Literal else None
            out.append(
                {
                    "name": name,
                    "type": "str" if choices else f.annotation.__name__,
                    "default": f.default,
                    **bounds,
                    "choices": choices,
                    "help": f.description,
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _param_error(cls: type[Params], error: ValidationError) -> ParamError:
    first = error.errors()[0]
    raised = (first.get("ctx") or {}).get("error")
    if isinstance(raised, ParamError):
        return raised
    name = ".".join(str(part) for part in first["loc"]) or "__all__"
    if first["type"] == "extra_forbidden":
        known = ", ".join(sorted(cls.model_fields))
        return ParamError(name, f"unknown parameter (expected one of: {known})")
    return ParamError(name, error_message(first))


# --- Strategies ------------------------------------------------------------------------------


def next_wake_ns(rng: random.Random, mean_rate: float, now_ns: int = 0) -> int:
    """The next wake of a Poisson clock with ``mean_rate`` wakes per second: ``now_ns`` plus an
    exponential delay (at least 1 ns, so time always advances)."""
    if mean_rate <= 0:
        raise ValueError(f"mean_rate must be positive, not {mean_rate!r}")
    return now_ns + max(1, int(rng.expovariate(mean_rate) * NS_PER_S))


class Strategy:
    """Base class: a strategy is constructed once per agent with its parameters and its own
    random generator, then asked ``decide(view, state)`` at every wake.

    Subclasses set ``name`` (the registry key) and ``params_cls`` (their :class:`Params`), and
    keep whatever signal state they need between wakes (reset by :meth:`reset`)."""

    name: ClassVar[str] = ""
    params_cls: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | Mapping[str, Any] | None, rng: random.Random) -> None:
        if not isinstance(rng, random.Random):
            raise TypeError(f"rng must be a random.Random, not {type(rng).__name__}")
        if params is not None and not isinstance(params, self.params_cls | Mapping):
            raise TypeError(
                f"params must be a {self.params_cls.__name__} or a mapping, "
                f"not {type(params).__name__}"
            )
        self.params = self.params_cls.validate(params)
        self.rng = rng
        self.reset()

    def reset(self) -> None:
        """Forget the signal state accumulated between wakes (a simulation reset)."""

    def decide(self, view: MarketView, state: AgentState) -> list[Action]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"

    next_wake_ns = staticmethod(next_wake_ns)
