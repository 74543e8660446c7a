"""A simulation's configuration: plain data, loaded from YAML or JSON (or built from a preset or
the admin's agent population), validated up front with errors that name the offending field.

Units at this edge are the ones people write: prices and money as decimal strings in dollars,
times of day as ``"HH:MM[:SS]"``, latencies in microseconds, rates in wakes per second. The
simulator converts them once into integer ticks, lots and nanoseconds.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from agents.strategies import STRATEGIES, FundamentalParams, ParamError, validate_params
from exchange.protocol.symbols import SYMBOL_RULE, is_symbol

__all__ = [
    "ActivityConfig",
    "AgentGroup",
    "ConfigError",
    "Halt",
    "LatencyConfig",
    "Shock",
    "SimConfig",
    "config_from_mapping",
    "load_config",
    "parse_time_of_day",
]

NS_PER_S = 1_000_000_000
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$")


class ConfigError(ValueError):
    """An invalid configuration: ``path`` names the field (``agents[2].params.size_max``) and
    ``message`` says what is wrong with it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def parse_time_of_day(value: Any, path: str = "time") -> int:
    """``"09:30"``, ``"16:00:00"`` or ``"12:00:00.5"`` as nanoseconds after midnight."""
    if not isinstance(value, str) or not (m := _TIME_RE.match(value.strip())):
        raise ConfigError(path, f"must be a time of day like '09:30' or '16:00:00', not {value!r}")
    hours, minutes = int(m[1]), int(m[2])
    seconds = int(m[3] or 0)
    fraction = int((m[4] or "").ljust(9, "0") or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ConfigError(path, f"is not a valid time of day: {value!r}")
    return ((hours * 60 + minutes) * 60 + seconds) * NS_PER_S + fraction


def format_time_of_day(ns: int) -> str:
    seconds, fraction = divmod(ns, NS_PER_S)
    text = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return text + (f".{fraction:09d}".rstrip("0") if fraction else "")


@dataclass(frozen=True)
class LatencyConfig:
    """One-way latency from an agent to the exchange. Each agent draws its own base latency once,
    uniformly in ``base_us`` ± ``spread`` (a share of ``base_us``); every message adds an
    exponential jitter with mean ``jitter_us``."""

    base_us: float = 500.0
    spread: float = 0.5
    jitter_us: float = 100.0


@dataclass(frozen=True)
class AgentGroup:
    """``count`` agents running one strategy with the same parameters (each with its own random
    generator, so they still act differently)."""

    strategy: str
    count: int
    wake_rate_hz: float
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    max_position: int | None = None
    initial_cash: Decimal = Decimal(0)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    #: Whether the market's activity level (see :class:`ActivityConfig`) scales its wake rate.
    follows_activity: bool = True


@dataclass(frozen=True)
class Shock:
    """At ``at_ns`` the fundamental value (and the reference price) moves by ``pct`` percent;
    ``permanent`` moves the fundamental's long-run mean with it."""

    at_ns: int
    pct: float
    permanent: bool = True


@dataclass(frozen=True)
class Halt:
    """Trading halted from ``start_ns`` to ``end_ns`` (cancels allowed, new orders rejected)."""

    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class ActivityConfig:
    """The market's activity level: a mean-one log-normal process (log-OU with ``half_life_s``
    and stationary standard deviation ``sd`` of its log) that scales the agents' wake rates and
    the speed at which the fundamental value's clock runs (news arrives faster when the market is
    busy). ``sd = 0`` turns it off. This is the mixture-of-distributions mechanism (Clark 1973):
    volatility and volume share one slowly varying intensity."""

    sd: float = 0.0
    half_life_s: float = 1200.0
    step_s: float = 1.0


@dataclass(frozen=True)
class SimConfig:
    symbol: str = "ACME"
    date: str = "2024-01-02"
    tick_size: Decimal = Decimal("0.01")
    lot_size: int = 1
    reference_price: Decimal = Decimal("100.00")
    start_ns: int = parse_time_of_day("09:30")
    end_ns: int = parse_time_of_day("16:00")
    #: Price levels a side in the LOBSTER order book file.
    levels: int = 10
    #: Price levels a side that market makers see (others see the touch).
    view_levels: int = 5
    #: Recent trades in every agent's view.
    recent_trades: int = 20
    fundamental: Mapping[str, Any] = field(default_factory=dict)
    activity: ActivityConfig = field(default_factory=ActivityConfig)
    agents: tuple[AgentGroup, ...] = ()
    shocks: tuple[Shock, ...] = ()
    halts: tuple[Halt, ...] = ()

    @property
    def reference_ticks(self) -> int:
        return int(self.reference_price / self.tick_size)

    @property
    def price_multiplier(self) -> int:
        """LOBSTER price units (dollars x 10,000) per tick."""
        return int(self.tick_size * 10_000)

    @property
    def agent_count(self) -> int:
        return sum(g.count for g in self.agents)

    def with_session(self, start_ns: int | None = None, end_ns: int | None = None) -> SimConfig:
        """The same configuration with another trading session (shocks and halts outside it
        dropped)."""
        start = self.start_ns if start_ns is None else start_ns
        end = self.end_ns if end_ns is None else end_ns
        if end <= start:
            raise ConfigError("end", "must be after start")
        # Shocks and halts outside the new session do not happen.
        return replace(
            self,
            start_ns=start,
            end_ns=end,
            shocks=tuple(s for s in self.shocks if start <= s.at_ns < end),
            halts=tuple(h for h in self.halts if start <= h.start_ns and h.end_ns <= end),
        )

    def to_dict(self) -> dict[str, Any]:
        """The configuration in the same shape :func:`config_from_mapping` reads (JSON-ready)."""
        return {
            "symbol": self.symbol,
            "date": self.date,
            "tick_size": str(self.tick_size),
            "lot_size": self.lot_size,
            "reference_price": str(self.reference_price),
            "start": format_time_of_day(self.start_ns),
            "end": format_time_of_day(self.end_ns),
            "levels": self.levels,
            "view_levels": self.view_levels,
            "recent_trades": self.recent_trades,
            "fundamental": dict(self.fundamental),
            "activity": {
                "sd": self.activity.sd,
                "half_life_s": self.activity.half_life_s,
                "step_s": self.activity.step_s,
            },
            "agents": [
                {
                    "name": g.name,
                    "strategy": g.strategy,
                    "count": g.count,
                    "wake_rate_hz": g.wake_rate_hz,
                    "max_position": g.max_position,
                    "initial_cash": str(g.initial_cash),
                    "follows_activity": g.follows_activity,
                    "latency": {
                        "base_us": g.latency.base_us,
                        "spread": g.latency.spread,
                        "jitter_us": g.latency.jitter_us,
                    },
                    "params": dict(g.params),
                }
                for g in self.agents
            ],
            "shocks": [
                {"at": format_time_of_day(s.at_ns), "pct": s.pct, "permanent": s.permanent}
                for s in self.shocks
            ],
            "halts": [
                {"start": format_time_of_day(h.start_ns), "end": format_time_of_day(h.end_ns)}
                for h in self.halts
            ],
        }


# --- Validation ----------------------------------------------------------------------------------


def _check_keys(data: Any, path: str, known: Sequence[str], required: Sequence[str] = ()) -> dict:
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"must be a mapping, not {type(data).__name__}")
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{path}.{key}" if path else str(key),
                f"unknown field (expected one of: {', '.join(known)})",
            )
    for key in required:
        if key not in data:
            raise ConfigError(f"{path}.{key}" if path else key, "is required")
    return dict(data)


def _number(value: Any, path: str, *, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(path, f"must be a number, not {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(path, f"must be finite, not {value!r}")
    if lo is not None and value < lo:
        raise ConfigError(path, f"must be at least {lo:g} (got {value:g})")
    if hi is not None and value > hi:
        raise ConfigError(path, f"must be at most {hi:g} (got {value:g})")
    return value


def _integer(value: Any, path: str, *, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"must be a whole number, not {value!r}")
    if lo is not None and value < lo:
        raise ConfigError(path, f"must be at least {lo} (got {value})")
    if hi is not None and value > hi:
        raise ConfigError(path, f"must be at most {hi} (got {value})")
    return value


def _decimal(value: Any, path: str, *, positive: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ConfigError(path, f"must be a decimal number (a string like '0.01'), not {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(path, f"must be a decimal number, not {value!r}") from None
    if not number.is_finite():
        raise ConfigError(path, f"must be finite, not {value!r}")
    if positive and number <= 0:
        raise ConfigError(path, f"must be positive (got {value})")
    return number


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, f"must be true or false, not {value!r}")
    return value


def _latency(data: Any, path: str) -> LatencyConfig:
    d = _check_keys(data, path, ("base_us", "spread", "jitter_us"))
    default = LatencyConfig()
    return LatencyConfig(
        base_us=_number(d.get("base_us", default.base_us), f"{path}.base_us", lo=0, hi=1e7),
        spread=_number(d.get("spread", default.spread), f"{path}.spread", lo=0, hi=1),
        jitter_us=_number(d.get("jitter_us", default.jitter_us), f"{path}.jitter_us", lo=0, hi=1e7),
    )


_GROUP_FIELDS = (
    "name",
    "strategy",
    "count",
    "wake_rate_hz",
    "params",
    "max_position",
    "initial_cash",
    "latency",
    "follows_activity",
)


def _agent_group(data: Any, path: str) -> AgentGroup:
    d = _check_keys(data, path, _GROUP_FIELDS, ("strategy", "wake_rate_hz"))
    strategy = d["strategy"]
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"{path}.strategy",
            f"unknown strategy {strategy!r} (expected one of: {', '.join(STRATEGIES)})",
        )
    params = d.get("params") or {}
    try:
        validated = validate_params(strategy, params).to_dict()
    except ParamError as error:
        raise ConfigError(f"{path}.params.{error.field}", error.message) from None
    max_position = d.get("max_position")
    if max_position is not None:
        max_position = _integer(max_position, f"{path}.max_position", lo=1, hi=2**40 - 1)
    name = d.get("name", strategy)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}.name", f"must be a non-empty string, not {name!r}")
    return AgentGroup(
        strategy=strategy,
        count=_integer(d.get("count", 1), f"{path}.count", lo=1, hi=100_000),
        wake_rate_hz=_number(d["wake_rate_hz"], f"{path}.wake_rate_hz", lo=1e-6, hi=1e4),
        params=validated,
        name=name,
        max_position=max_position,
        initial_cash=_decimal(d.get("initial_cash", 0), f"{path}.initial_cash"),
        latency=_latency(d.get("latency", {}), f"{path}.latency"),
        follows_activity=_boolean(d.get("follows_activity", True), f"{path}.follows_activity"),
    )


_TOP_FIELDS = (
    "symbol",
    "date",
    "tick_size",
    "lot_size",
    "reference_price",
    "start",
    "end",
    "levels",
    "view_levels",
    "recent_trades",
    "fundamental",
    "activity",
    "agents",
    "shocks",
    "halts",
)


def config_from_mapping(data: Any) -> SimConfig:
    """A validated :class:`SimConfig` from plain data; raises :class:`ConfigError`."""
    d = _check_keys(data, "", _TOP_FIELDS, ("agents",))
    default = SimConfig()
    symbol = d.get("symbol", default.symbol)
    if not is_symbol(symbol):
        raise ConfigError("symbol", f"{SYMBOL_RULE} Not {symbol!r}.")
    date = d.get("date", default.date)
    if isinstance(date, dt.date):  # YAML reads an unquoted date as a date
        date = date.isoformat()
    try:
        dt.date.fromisoformat(date)
    except (TypeError, ValueError):
        raise ConfigError("date", f"must be a date like '2024-01-02', not {date!r}") from None

    tick_size = _decimal(d.get("tick_size", default.tick_size), "tick_size", positive=True)
    if (tick_size * 10_000) % 1 != 0:
        raise ConfigError(
            "tick_size", "must be a whole number of 1/10,000 dollars (LOBSTER's unit)"
        )
    lot_size = _integer(d.get("lot_size", default.lot_size), "lot_size", lo=1, hi=1_000_000)
    reference = _decimal(
        d.get("reference_price", default.reference_price), "reference_price", positive=True
    )
    if reference % tick_size != 0:
        raise ConfigError("reference_price", f"must be a whole number of ticks ({tick_size})")

    start = parse_time_of_day(d.get("start", "09:30"), "start")
    end = parse_time_of_day(d.get("end", "16:00"), "end")
    if end <= start:
        raise ConfigError("end", "must be after start")

    fundamental = dict(d.get("fundamental") or {})
    fundamental.setdefault("mean", float(reference / tick_size))
    try:
        fundamental = FundamentalParams.validate(fundamental).to_dict()
    except ParamError as error:
        raise ConfigError(f"fundamental.{error.field}", error.message) from None

    a = _check_keys(d.get("activity", {}), "activity", ("sd", "half_life_s", "step_s"))
    activity = ActivityConfig(
        sd=_number(a.get("sd", 0.0), "activity.sd", lo=0.0, hi=3.0),
        half_life_s=_number(a.get("half_life_s", 1200.0), "activity.half_life_s", lo=1, hi=1e7),
        step_s=_number(a.get("step_s", 1.0), "activity.step_s", lo=0.001, hi=3600),
    )
    if activity.step_s > activity.half_life_s:
        raise ConfigError("activity.step_s", "must not exceed activity.half_life_s")

    agents = d["agents"]
    if not isinstance(agents, list) or not agents:
        raise ConfigError("agents", "must be a non-empty list of agent groups")
    groups = tuple(_agent_group(g, f"agents[{i}]") for i, g in enumerate(agents))
    seen: set[str] = set()
    for i, g in enumerate(groups):
        if g.name in seen:
            raise ConfigError(f"agents[{i}].name", f"duplicate group name {g.name!r}")
        seen.add(g.name)

    shocks_data = d.get("shocks") or []
    if not isinstance(shocks_data, list):
        raise ConfigError("shocks", "must be a list")
    shocks = []
    for i, s in enumerate(shocks_data):
        path = f"shocks[{i}]"
        s = _check_keys(s, path, ("at", "pct", "permanent"), ("at", "pct"))
        at = parse_time_of_day(s["at"], f"{path}.at")
        if not start <= at < end:
            raise ConfigError(f"{path}.at", "must fall inside the trading session")
        shocks.append(
            Shock(
                at_ns=at,
                pct=_number(s["pct"], f"{path}.pct", lo=-99.0, hi=1000.0),
                permanent=_boolean(s.get("permanent", True), f"{path}.permanent"),
            )
        )

    halts_data = d.get("halts") or []
    if not isinstance(halts_data, list):
        raise ConfigError("halts", "must be a list")
    halts = []
    for i, h in enumerate(halts_data):
        path = f"halts[{i}]"
        h = _check_keys(h, path, ("start", "end"), ("start", "end"))
        h_start = parse_time_of_day(h["start"], f"{path}.start")
        h_end = parse_time_of_day(h["end"], f"{path}.end")
        if not start <= h_start < h_end <= end:
            raise ConfigError(path, "must start before it ends, inside the trading session")
        halts.append(Halt(h_start, h_end))
    halts.sort(key=lambda h: h.start_ns)
    for prev, nxt in itertools.pairwise(halts):
        if nxt.start_ns < prev.end_ns:
            raise ConfigError("halts", "halts must not overlap")

    return SimConfig(
        symbol=symbol,
        date=date,
        tick_size=tick_size,
        lot_size=lot_size,
        reference_price=reference,
        start_ns=start,
        end_ns=end,
        levels=_integer(d.get("levels", default.levels), "levels", lo=1, hi=100),
        view_levels=_integer(d.get("view_levels", default.view_levels), "view_levels", lo=1, hi=50),
        recent_trades=_integer(
            d.get("recent_trades", default.recent_trades), "recent_trades", lo=1, hi=1000
        ),
        fundamental=fundamental,
        activity=activity,
        agents=groups,
        shocks=tuple(sorted(shocks, key=lambda s: s.at_ns)),
        halts=tuple(halts),
    )


def load_config(path: str | Path) -> SimConfig:
    """Reads a ``.yaml``/``.yml`` or ``.json`` file; raises :class:`ConfigError` for a file that
    cannot be read or parsed, naming the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError("", f"cannot read {path}: {error.strerror or error}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError("", f"{path} is not valid JSON: {error}") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError("", f"{path} is not valid YAML: {error}") from None
    else:
        raise ConfigError("", f"{path}: a configuration file must end in .yaml, .yml or .json")
    return config_from_mapping(data)
