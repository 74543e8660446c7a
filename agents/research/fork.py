"""Forks of the live market: a research run that starts from the exchange as it is now.

A fork has two halves:

* the **capture** (:func:`capture`, the only part that reads Redis and the database): the engine's
  book — its last snapshot (``{prefix}:snap:{SYM}``) with the journal entries after it applied
  in process exactly as the engine worker applies them, so the book is the engine's state at the
  journal's last entry, not the snapshot's up to 30 s old one — the instrument's rules, the
  enabled agents of the symbol with their accounts' cash, the live runner's fundamental value
  and the last trades. It is written to ``fork.json`` and is all a fork run reads, so a fork is
  re-run (``simulate verify``) without the live market;
* the **start** (:class:`ForkStart`): a capture plus a :class:`Branch` (a counterfactual: without
  some agents, with an extra shock, another tick size, fee or band), which the simulator opens
  for each seed — the restored book, each agent's position and resting orders read from it.

Agents keep their live account ids, so the restored orders and positions are theirs; resting
orders of accounts that are not agents (people, programs) stay on the book, owned by passive
``outside`` accounts that never act but are filled.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from flashbook_engine import OrderBook

from exchange.protocol.decimals import parse_decimal

from .config import ConfigError, Shock, SimConfig, config_from_mapping, format_time_of_day

__all__ = [
    "FORK_FILE",
    "Branch",
    "Capture",
    "ForkStart",
    "capture",
    "parse_branch",
    "read_capture",
]

FORK_FILE = "fork.json"
NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
#: The last trades a fork starts with: as many as the live runner's view keeps.
_RECENT_TRADES = 30


@dataclass(frozen=True)
class Capture:
    """The live market at one journal entry (see the module doc). Prices are ticks, quantities
    lots, times nanoseconds after midnight UTC."""

    symbol: str
    #: The capture's wall-clock time (ISO 8601, UTC): the fork's session starts at its second.
    captured_at: str
    #: The last journal entry applied to ``snapshot`` ("0-0": the journal was empty).
    journal_id: str
    #: ``OrderBook.snapshot()`` bytes of the engine's state at ``journal_id``.
    snapshot: bytes
    #: The simulation configuration: the instrument's rules, the agents (one group each, by
    #: name), the live fundamental's parameters, the session from the capture on.
    config: Mapping[str, Any]
    #: Agent name -> its account id.
    accounts: Mapping[str, int]
    #: Account id -> cash (money, as the recorder has booked it: it may lag the book by the
    #: events it has not recorded yet).
    cash: Mapping[int, str]
    #: The live runner's fundamental value and long-run mean (ticks), None when no runner ran.
    fundamental: Mapping[str, float] | None
    #: The last trades, oldest first: ``[time_ns, price, qty, aggressor]``.
    trades: Sequence[Sequence[Any]] = ()

    def to_json(self) -> str:
        data = {
            "symbol": self.symbol,
            "captured_at": self.captured_at,
            "journal_id": self.journal_id,
            "snapshot": base64.b64encode(self.snapshot).decode("ascii"),
            "accounts": dict(self.accounts),
            "cash": {str(k): v for k, v in self.cash.items()},
            "fundamental": None if self.fundamental is None else dict(self.fundamental),
            "trades": [list(t) for t in self.trades],
            "config": dict(self.config),
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    def write(self, directory: Path) -> Path:
        path = Path(directory) / FORK_FILE
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    def base_config(self) -> SimConfig:
        return config_from_mapping(self.config)


def read_capture(path: str | Path) -> Capture:
    """A capture from its ``fork.json``; ``ValueError`` naming what is wrong."""
    path = Path(path)
    if path.is_dir():
        path = path / FORK_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Capture(
            symbol=data["symbol"],
            captured_at=data["captured_at"],
            journal_id=data["journal_id"],
            snapshot=base64.b64decode(data["snapshot"], validate=True),
            config=data["config"],
            accounts={str(k): int(v) for k, v in data["accounts"].items()},
            cash={int(k): str(v) for k, v in data["cash"].items()},
            fundamental=data["fundamental"],
            trades=[tuple(t) for t in data["trades"]],
        )
    except FileNotFoundError:
        raise ValueError(f"{path}: no fork capture there") from None
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a readable fork capture ({error})") from None


# --- the capture -------------------------------------------------------------------------------


def capture(symbol: str, *, minutes: float = 60.0, now_ns: int | None = None) -> Capture:
    """Captures the live market of ``symbol`` (reads Redis and the database). The session runs
    ``minutes`` from the capture's second, to midnight at the latest. ``ValueError`` when
    there is nothing to fork (an unknown or disabled symbol, no enabled agents)."""
    import time
    from datetime import UTC, datetime

    from agents.keys import client as agents_redis
    from agents.keys import fundamentals
    from agents.research.from_db import config_from_agent_rows
    from agents.runner.market import FUNDAMENTAL_PARAMS
    from agents.selectors import agent_configs_enabled
    from exchange import selectors as exchange_selectors

    if minutes <= 0:
        raise ConfigError("minutes", "must be positive")
    rows = agent_configs_enabled([symbol])
    if not rows:
        raise ConfigError(
            "fork", f"no enabled agents trade {symbol!r} (or it is no enabled instrument)"
        )
    book, journal_id = exchange_selectors.engine_book_now(symbol)

    now_ns = time.time_ns() if now_ns is None else now_ns
    moment = datetime.fromtimestamp(now_ns / NS_PER_S, tz=UTC)
    day_ns = (now_ns % (86_400 * NS_PER_S)) // NS_PER_S * NS_PER_S
    end_ns = min(day_ns + round(minutes * 60) * NS_PER_S, 86_400 * NS_PER_S - NS_PER_S)
    if end_ns <= day_ns:
        raise ConfigError("minutes", "the fork's session would end after midnight UTC")

    accounts = {row["name"]: int(row["account_id"]) for row in rows}
    _, recorded = exchange_selectors.recorded_accounts(symbol, list(accounts.values()))
    cash = {account: str(r.account.cash) for account, r in recorded.items()}
    instrument = exchange_selectors.instrument_get(symbol)
    tick, lot = instrument.tick_size, instrument.lot_size

    raw = agents_redis().hget(fundamentals(), symbol)
    saved = json.loads(raw) if raw else None
    mean = float(saved["mean"]) if saved else float(instrument.reference_price / tick)

    config = config_from_agent_rows(rows, symbol=symbol).to_dict()
    config.update(
        {
            "date": moment.date().isoformat(),
            "start": format_time_of_day(day_ns),
            "end": format_time_of_day(end_ns),
            # The live market has no activity process: its agents' clocks are calendar time.
            "activity": {"sd": 0.0},
            "fundamental": {**FUNDAMENTAL_PARAMS, "mean": max(mean, 1.0)},
            "shocks": [],
            "halts": [],
        }
    )
    recent = list(exchange_selectors.trade_list(instrument)[:_RECENT_TRADES])[::-1]
    trades = [
        [
            # The view's trades are times of day; those of an earlier day come before the fork.
            min(_time_of_day_ns(t.executed_at), day_ns - 1),
            int(t.price / tick),
            int(t.quantity / lot),
            t.aggressor_side,
        ]
        for t in recent
    ]
    return Capture(
        symbol=symbol,
        captured_at=moment.isoformat(timespec="milliseconds"),
        journal_id=journal_id,
        snapshot=bytes(book.snapshot()),
        config=config,
        accounts=accounts,
        cash={account: str(money) for account, money in cash.items()},
        fundamental=None if not saved else {"value": float(saved["value"]), "mean": mean},
        trades=trades,
    )


def _time_of_day_ns(moment) -> int:
    return round(moment.timestamp() * NS_PER_S) % (86_400 * NS_PER_S)


# --- branches ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Branch:
    """One counterfactual of a fork; the default is the market as it is."""

    #: Agent names (or groups) left out: their resting orders are cancelled at the fork.
    without: tuple[str, ...] = ()
    #: Extra shocks: ``(minutes after the fork, percent)``.
    shocks: tuple[tuple[float, float], ...] = ()
    tick_size: Decimal | None = None
    fees_bps: tuple[int, int] | None = None  # (maker, taker)
    band_pct: Decimal | None = None

    @property
    def name(self) -> str:
        parts = [f"without-{n}" for n in self.without]
        parts += [f"shock{p:+g}at{m:g}m" for m, p in self.shocks]
        if self.tick_size is not None:
            parts.append(f"tick-{self.tick_size}")
        if self.fees_bps is not None:
            parts.append(f"fees-{self.fees_bps[0]}-{self.fees_bps[1]}")
        if self.band_pct is not None:
            parts.append(f"band-{self.band_pct}")
        return "_".join(parts) or "as-is"

    def to_dict(self) -> dict:
        return {
            "without": list(self.without),
            "shocks": [[m, p] for m, p in self.shocks],
            "tick_size": None if self.tick_size is None else str(self.tick_size),
            "fees_bps": None if self.fees_bps is None else list(self.fees_bps),
            "band_pct": None if self.band_pct is None else str(self.band_pct),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Branch:
        return cls(
            without=tuple(data.get("without", ())),
            shocks=tuple((float(m), float(p)) for m, p in data.get("shocks", ())),
            tick_size=None if data.get("tick_size") is None else Decimal(data["tick_size"]),
            fees_bps=None if data.get("fees_bps") is None else tuple(data["fees_bps"]),
            band_pct=None if data.get("band_pct") is None else Decimal(data["band_pct"]),
        )


def parse_branch(text: str) -> Branch:
    """A branch from ``--branch`` text: ``;``-separated changes, each one of
    ``without=NAME[,NAME...]``, ``shock=PCT@MINUTES`` (repeatable), ``tick=SIZE``,
    ``fees=MAKER/TAKER`` (basis points) and ``band=PCT``; ``as-is`` (or nothing) for none.
    ``ConfigError`` naming the part that is wrong."""
    without: list[str] = []
    shocks: list[tuple[float, float]] = []
    changes: dict[str, Any] = {}
    text = text.strip()
    if text in ("", "as-is"):
        return Branch()
    for part in (p.strip() for p in text.split(";")):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        where = f"branch {text!r}: {part!r}"
        if not sep or not value:
            raise ConfigError(where, "expected NAME=VALUE")
        try:
            if name == "without":
                without += [n.strip() for n in value.split(",") if n.strip()]
            elif name == "shock":
                pct, at, minutes = value.partition("@")
                shock = (float(minutes) if at else 0.0, float(pct))
                if not all(math.isfinite(x) for x in shock) or shock[0] < 0:
                    raise ValueError
                if not -90 < shock[1] < 1000:
                    raise ConfigError(where, "a shock's percent must be above -90 and below 1000")
                shocks.append(shock)
            elif name == "tick":
                tick = parse_decimal(value)
                if tick <= 0:
                    raise ValueError
                changes["tick_size"] = tick
            elif name == "fees":
                maker, slash, taker = value.partition("/")
                if not slash:
                    raise ValueError
                changes["fees_bps"] = (int(maker), int(taker))
            elif name == "band":
                band = parse_decimal(value)
                if band < 0:
                    raise ValueError
                changes["band_pct"] = band
            else:
                raise ConfigError(
                    where, "unknown change (expected without, shock, tick, fees or band)"
                )
        except ConfigError:
            raise
        except (ValueError, InvalidOperation, ArithmeticError):
            formats = {
                "without": "without=NAME[,NAME...]",
                "shock": "shock=PCT@MINUTES, e.g. shock=-3@10",
                "tick": "tick=SIZE, a positive price step like 0.05",
                "fees": "fees=MAKER/TAKER in basis points, e.g. fees=-1/3",
                "band": "band=PCT, 0 for none",
            }
            raise ConfigError(where, f"expected {formats[name]}") from None
    return Branch(without=tuple(without), shocks=tuple(shocks), **changes)


# --- the start of a run --------------------------------------------------------------------------


class _Outside:
    """The strategy of an account that is not an agent: its resting orders are filled and
    cancelled by others' actions, it never acts itself (it is never woken)."""

    name = "outside"

    def decide(self, view, state):  # pragma: no cover - never woken
        return ()


OUTSIDE = _Outside()


@dataclass
class ForkStart:
    """What a fork run starts from: the branch's configuration, and for each seed a fresh book
    (:meth:`open_book`). Built by :meth:`of`."""

    capture: Capture
    branch: Branch
    config: SimConfig
    #: Agent name -> account id, for the agents the branch keeps.
    accounts: dict[str, int]
    #: The branch's prices over the capture's: a new tick size multiplies ticks by it.
    price_ratio: Decimal = Decimal(1)
    removed_accounts: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def of(cls, capture: Capture, branch: Branch = Branch()) -> ForkStart:
        config = capture.base_config()
        data = config.to_dict()
        names = {g.name for g in config.agents}
        unknown = [n for n in branch.without if n not in names]
        if unknown:
            raise ConfigError(
                "without",
                f"no agent named {', '.join(map(repr, unknown))} in the fork "
                f"(its agents: {', '.join(sorted(names))})",
            )
        data["agents"] = [a for a in data["agents"] if a["name"] not in branch.without]
        if not data["agents"]:
            raise ConfigError("without", "leaves no agent to simulate")
        ratio = Decimal(1)
        if branch.tick_size is not None:
            ratio = config.tick_size / branch.tick_size
            data["tick_size"] = str(branch.tick_size)
            data["fundamental"] = {
                **data["fundamental"],
                "mean": float(Decimal(repr(data["fundamental"]["mean"])) * ratio),
            }
        if branch.fees_bps is not None:
            data["maker_fee_bps"], data["taker_fee_bps"] = branch.fees_bps
        if branch.band_pct is not None:
            data["price_band_pct"] = str(branch.band_pct)
        extra = []
        for minutes, pct in branch.shocks:
            at = config.start_ns + round(minutes * 60 * NS_PER_S)
            if at >= config.end_ns:
                raise ConfigError("shock", f"{minutes:g} minutes is after the fork's session")
            extra.append(Shock(at, pct, True))
        try:
            branch_config = config_from_mapping(data)
        except ConfigError as error:
            raise ConfigError(f"branch {branch.name}: {error.path}", error.message) from None
        shocks = sorted((*branch_config.shocks, *extra), key=lambda s: s.at_ns)
        branch_config = replace(branch_config, shocks=tuple(shocks))
        accounts = {n: a for n, a in capture.accounts.items() if n not in branch.without}
        removed = frozenset(a for n, a in capture.accounts.items() if n in branch.without)
        return cls(capture, branch, branch_config, accounts, ratio, removed)

    # -- prices of the branch --

    def ticks(self, price: float, *, side: str | None = None) -> int:
        """A capture price in the branch's ticks: a bid rounds down, an ask up (a finer or
        coarser tick never makes the book cross), anything else to the nearest."""
        if self.price_ratio == 1:
            return int(price)
        scaled = Decimal(repr(price)) * self.price_ratio
        if side == "buy":
            return max(1, math.floor(scaled))
        if side == "sell":
            return max(1, math.ceil(scaled))
        return max(1, round(scaled))

    @property
    def fundamental(self) -> tuple[float, float] | None:
        """(value, mean) in the branch's ticks, or None (the fundamental starts at the mean)."""
        saved = self.capture.fundamental
        if saved is None:
            return None
        ratio = float(self.price_ratio)
        return float(saved["value"]) * ratio, float(saved["mean"]) * ratio

    def recent_trades(self) -> list[tuple[int, int, int, str]]:
        return [(t, self.ticks(p), q, a) for t, p, q, a in self.capture.trades]

    def open_book(self) -> OrderBook:
        """A fresh book for one run: the capture's, the removed agents' orders cancelled, prices
        in the branch's ticks."""
        book = OrderBook.restore(self.capture.snapshot)
        for order in book.resting_orders():
            if order.account in self.removed_accounts:
                book.cancel(order.order_id, order.account)
        if self.price_ratio != 1:
            book = self._rescaled(book)
        return book

    def _rescaled(self, old: OrderBook) -> OrderBook:
        """The book with every price in the branch's ticks. A book cannot be re-priced in
        place, so it is rebuilt: the accounts' positions first (the engine's position limits
        count them), by trades against a clearing account that has no limit, then the resting
        orders in priority order. The engine takes new order ids only in increasing order, and
        priority order is not id order (a replace that lost its place keeps its id), so the
        rebuilt orders get new ids, 1, 2, ... in priority order."""
        book = OrderBook(old.symbol, 1 << 16)
        exposures = old.exposures()
        clearing = max([0, *exposures, *(o.account for o in old.resting_orders())]) + 1
        last = self.capture.trades[-1][1] if self.capture.trades else None
        price = self.ticks(last) if last is not None else self.config.reference_ticks
        next_id = 1
        for account, exposure in sorted(exposures.items()):
            position = exposure.position
            if not position:
                continue
            buys = position > 0
            book.new_order(next_id, clearing, "sell" if buys else "buy", price, abs(position))
            book.new_order(next_id + 1, account, "buy" if buys else "sell", price, abs(position))
            next_id += 2
        for order in old.resting_orders():
            book.new_order(
                next_id,
                order.account,
                order.side,
                self.ticks(order.price, side=order.side),
                order.qty,
                post_only=order.post_only,
                stp=order.stp,
                max_position=order.max_position,
            )
            next_id += 1
        return book
