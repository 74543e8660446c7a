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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from agents.strategies import STRATEGIES, FundamentalParams, ParamError, validate_params
from agents.strategies.base import error_message
from exchange.protocol.decimals import DecimalInputError, parse_decimal
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
    #: The price band (percent about the last trade, else the reference price), as the live
    #: exchange's instruments have one: the engine enforces both (`Command.band`). 0: none.
    price_band_pct: Decimal = Decimal("10")
    #: The volatility pause, as the live exchange's instruments have one (`Command.volatility`): a
    #: trade more than `volatility_move_pct` from any trade of the last `volatility_window_s`
    #: pauses the book for `volatility_pause_s` (LOBSTER type-7 rows mark it). 0: none.
    volatility_move_pct: Decimal = Decimal("5")
    volatility_window_s: int = 300
    volatility_pause_s: int = 30
    #: Fee rates per trade in basis points of its value (`Command.fees`): the resting side's
    #: (negative: a rebate) and the incoming side's. The agents' results are net of them.
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
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
    def band_bps(self) -> int:
        return int(self.price_band_pct * 100)

    @property
    def volatility_bps(self) -> int:
        return int(self.volatility_move_pct * 100)

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
            "price_band_pct": str(self.price_band_pct),
            "volatility_move_pct": str(self.volatility_move_pct),
            "volatility_window_s": self.volatility_window_s,
            "volatility_pause_s": self.volatility_pause_s,
            "maker_fee_bps": self.maker_fee_bps,
            "taker_fee_bps": self.taker_fee_bps,
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
#
# The configuration's plain data is read by pydantic models (below, private): strict types (a bool
# is no number, a float no whole number, a string no number), bounds, required and unknown keys
# (extra="forbid"), then the cross-field rules in the models' after-validators. Their errors are
# mapped to one ConfigError naming the field (`_config_error`); the models then build the frozen
# dataclasses above, which are what the simulator uses.

_Int = Annotated[int, Strict()]
_Float = Annotated[float, Strict()]
_Bool = Annotated[bool, Strict()]


def _read_decimal(value: Any) -> Decimal:
    try:
        return parse_decimal(value)
    except DecimalInputError as error:
        if error.reason == "type":
            message = f"must be a decimal number (a string like '0.01'), not {value!r}"
        elif error.reason == "syntax":
            message = f"must be a decimal number, not {value!r}"
        else:
            message = f"must be finite, not {value!r}"
        raise ConfigError("", message) from None


def _read_positive_decimal(value: Any) -> Decimal:
    number = _read_decimal(value)
    if number <= 0:
        raise ConfigError("", f"must be positive (got {value})")
    return number


def _read_symbol(value: Any) -> str:
    if not is_symbol(value):
        raise ConfigError("", f"{SYMBOL_RULE} Not {value!r}.")
    return value


def _read_date(value: Any) -> str:
    if isinstance(value, dt.date):  # YAML reads an unquoted date as a date
        value = value.isoformat()
    try:
        dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ConfigError("", f"must be a date like '2024-01-02', not {value!r}") from None
    return value


def _none_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


_Decimal = Annotated[Decimal, PlainValidator(_read_decimal)]
_PositiveDecimal = Annotated[Decimal, PlainValidator(_read_positive_decimal)]
#: A time of day (``"09:30"``) read as nanoseconds after midnight.
_TimeOfDay = Annotated[int, PlainValidator(lambda value: parse_time_of_day(value, ""))]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _LatencyIn(_Model):
    base_us: Annotated[_Float, Field(ge=0, le=1e7)] = LatencyConfig.base_us
    spread: Annotated[_Float, Field(ge=0, le=1)] = LatencyConfig.spread
    jitter_us: Annotated[_Float, Field(ge=0, le=1e7)] = LatencyConfig.jitter_us


class _GroupIn(_Model):
    name: Annotated[str, Strict(), Field(min_length=1)] | None = None
    strategy: str
    count: Annotated[_Int, Field(ge=1, le=100_000)] = 1
    wake_rate_hz: Annotated[_Float, Field(ge=1e-6, le=1e4)]
    params: dict[str, Any] | None = None
    max_position: Annotated[_Int, Field(ge=1, le=2**40 - 1)] | None = None
    initial_cash: _Decimal = Decimal(0)
    latency: _LatencyIn = _LatencyIn()
    follows_activity: _Bool = True

    @field_validator("strategy", mode="plain")
    @classmethod
    def _known_strategy(cls, value: Any) -> str:
        if not isinstance(value, str) or value not in STRATEGIES:
            raise ConfigError(
                "", f"unknown strategy {value!r} (expected one of: {', '.join(STRATEGIES)})"
            )
        return value

    @model_validator(mode="after")
    def _strategy_params(self) -> Self:
        try:
            self.params = validate_params(self.strategy, self.params or {}).to_dict()
        except ParamError as error:
            raise ConfigError(f"params.{error.field}", error.message) from None
        return self

    def build(self) -> AgentGroup:
        return AgentGroup(
            strategy=self.strategy,
            count=self.count,
            wake_rate_hz=self.wake_rate_hz,
            params=self.params,
            name=self.name if self.name is not None else self.strategy,
            max_position=self.max_position,
            initial_cash=self.initial_cash,
            latency=LatencyConfig(**self.latency.model_dump()),
            follows_activity=self.follows_activity,
        )


class _ActivityIn(_Model):
    sd: Annotated[_Float, Field(ge=0.0, le=3.0)] = ActivityConfig.sd
    half_life_s: Annotated[_Float, Field(ge=1, le=1e7)] = ActivityConfig.half_life_s
    step_s: Annotated[_Float, Field(ge=0.001, le=3600)] = ActivityConfig.step_s

    @model_validator(mode="after")
    def _step_within_half_life(self) -> Self:
        if self.step_s > self.half_life_s:
            raise ConfigError("step_s", "must not exceed activity.half_life_s")
        return self


class _ShockIn(_Model):
    at: _TimeOfDay
    pct: Annotated[_Float, Field(ge=-99.0, le=1000.0)]
    permanent: _Bool = True


class _HaltIn(_Model):
    start: _TimeOfDay
    end: _TimeOfDay


class _SimIn(_Model):
    symbol: Annotated[str, PlainValidator(_read_symbol)] = SimConfig.symbol
    date: Annotated[str, PlainValidator(_read_date)] = SimConfig.date
    tick_size: _PositiveDecimal = SimConfig.tick_size
    lot_size: Annotated[_Int, Field(ge=1, le=1_000_000)] = SimConfig.lot_size
    reference_price: _PositiveDecimal = SimConfig.reference_price
    price_band_pct: Annotated[_Decimal, Field(ge=0, le=1000, decimal_places=2)] = (
        SimConfig.price_band_pct
    )
    volatility_move_pct: Annotated[_Decimal, Field(ge=0, le=100, decimal_places=2)] = (
        SimConfig.volatility_move_pct
    )
    volatility_window_s: Annotated[_Int, Field(ge=1, le=86_400)] = SimConfig.volatility_window_s
    volatility_pause_s: Annotated[_Int, Field(ge=1, le=86_400)] = SimConfig.volatility_pause_s
    maker_fee_bps: Annotated[_Int, Field(ge=-1000, le=1000)] = SimConfig.maker_fee_bps
    taker_fee_bps: Annotated[_Int, Field(ge=0, le=1000)] = SimConfig.taker_fee_bps
    start: _TimeOfDay = SimConfig.start_ns
    end: _TimeOfDay = SimConfig.end_ns
    levels: Annotated[_Int, Field(ge=1, le=100)] = SimConfig.levels
    view_levels: Annotated[_Int, Field(ge=1, le=50)] = SimConfig.view_levels
    recent_trades: Annotated[_Int, Field(ge=1, le=1000)] = SimConfig.recent_trades
    fundamental: dict[str, Any] | None = None
    activity: _ActivityIn = _ActivityIn()
    agents: list[_GroupIn]
    shocks: Annotated[list[_ShockIn], BeforeValidator(_none_as_empty_list)] = []
    halts: Annotated[list[_HaltIn], BeforeValidator(_none_as_empty_list)] = []

    @field_validator("agents", mode="before")
    @classmethod
    def _some_agents(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise ConfigError("", "must be a non-empty list of agent groups")
        return value

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        tick_size, start, end = self.tick_size, self.start, self.end
        if (tick_size * 10_000) % 1 != 0:
            raise ConfigError(
                "tick_size", "must be a whole number of 1/10,000 dollars (LOBSTER's unit)"
            )
        if self.reference_price % tick_size != 0:
            raise ConfigError("reference_price", f"must be a whole number of ticks ({tick_size})")
        if end <= start:
            raise ConfigError("end", "must be after start")
        if self.maker_fee_bps < -self.taker_fee_bps:
            raise ConfigError("maker_fee_bps", "a maker rebate may not exceed the taker fee")
        fundamental = dict(self.fundamental or {})
        fundamental.setdefault("mean", float(self.reference_price / tick_size))
        try:
            self.fundamental = FundamentalParams.validate(fundamental).to_dict()
        except ParamError as error:
            raise ConfigError(f"fundamental.{error.field}", error.message) from None
        seen: set[str] = set()
        for i, group in enumerate(self.agents):
            name = group.name if group.name is not None else group.strategy
            if name in seen:
                raise ConfigError(f"agents[{i}].name", f"duplicate group name {name!r}")
            seen.add(name)
        for i, shock in enumerate(self.shocks):
            if not start <= shock.at < end:
                raise ConfigError(f"shocks[{i}].at", "must fall inside the trading session")
        for i, halt in enumerate(self.halts):
            if not start <= halt.start < halt.end <= end:
                raise ConfigError(
                    f"halts[{i}]", "must start before it ends, inside the trading session"
                )
        halts = sorted(self.halts, key=lambda h: h.start)
        for prev, nxt in itertools.pairwise(halts):
            if nxt.start < prev.end:
                raise ConfigError("halts", "halts must not overlap")
        return self

    def build(self) -> SimConfig:
        return SimConfig(
            symbol=self.symbol,
            date=self.date,
            tick_size=self.tick_size,
            lot_size=self.lot_size,
            reference_price=self.reference_price,
            price_band_pct=self.price_band_pct,
            volatility_move_pct=self.volatility_move_pct,
            volatility_window_s=self.volatility_window_s,
            volatility_pause_s=self.volatility_pause_s,
            maker_fee_bps=self.maker_fee_bps,
            taker_fee_bps=self.taker_fee_bps,
            start_ns=self.start,
            end_ns=self.end,
            levels=self.levels,
            view_levels=self.view_levels,
            recent_trades=self.recent_trades,
            fundamental=self.fundamental or {},
            activity=ActivityConfig(**self.activity.model_dump()),
            agents=tuple(g.build() for g in self.agents),
            shocks=tuple(
                sorted(
                    (Shock(s.at, s.pct, s.permanent) for s in self.shocks), key=lambda s: s.at_ns
                )
            ),
            halts=tuple(
                sorted((Halt(h.start, h.end) for h in self.halts), key=lambda h: h.start_ns)
            ),
        )


#: The model whose fields an error's location names, by the location's field names (list indices
#: left out), for the "unknown field" message.
_MODELS: dict[tuple[str, ...], type[BaseModel]] = {
    (): _SimIn,
    ("activity",): _ActivityIn,
    ("agents",): _GroupIn,
    ("agents", "latency"): _LatencyIn,
    ("shocks",): _ShockIn,
    ("halts",): _HaltIn,
}


def _path(loc: Sequence[str | int]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _config_error(error: ValidationError) -> ConfigError:
    """The first of pydantic's errors as a :class:`ConfigError` naming the field."""
    first = error.errors()[0]
    loc = first["loc"]
    raised = (first.get("ctx") or {}).get("error")
    if isinstance(raised, ConfigError):  # a validator's own, relative to where it ran
        inner = raised.path
        path = _path(loc)
        if inner:
            path = f"{path}.{inner}" if path and not inner.startswith("[") else path + inner
        return ConfigError(path, raised.message)
    if first["type"] == "extra_forbidden":
        model = _MODELS[tuple(str(p) for p in loc[:-1] if not isinstance(p, int))]
        known = ", ".join(model.model_fields)
        return ConfigError(_path(loc), f"unknown field (expected one of: {known})")
    if first["type"] == "model_type" and not loc:
        return ConfigError("", f"must be a mapping, not {type(first['input']).__name__}")
    return ConfigError(_path(loc), error_message(first))


def config_from_mapping(data: Any) -> SimConfig:
    """A validated :class:`SimConfig` from plain data; raises :class:`ConfigError`."""
    try:
        model = _SimIn.model_validate(data)
    except ValidationError as error:
        raise _config_error(error) from None
    return model.build()


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
