"""Writes of the agents app: agent configurations (with their accounts) and the simulation
controls — pause, resume, reset, shock.

The simulation state lives in Redis (`agents.keys`), next to the journals it steers, so it
survives restarts of every process; each change is published on `{prefix}:sim` for the bridge.
Changes are serialized by a Redis lock, so a pause cannot interleave with a reset.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import redis
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agents import keys
from agents.forms import DEFAULT_LIMITS, LIMITS, AgentLimitsForm
from agents.models import AgentConfig
from agents.selectors import agent_config_limits, reset_pending, sim_status
from exchange import selectors as exchange_selectors
from exchange import services as exchange_services
from exchange.errors import Conflict, InvalidInput, NotFound, Unavailable
from exchange.models import Account
from exchange.orders import gateway
from exchange.protocol.decimals import DecimalInputError, decimal_str, parse_decimal

logger = logging.getLogger("flashbook.agents")

SHOCK_MIN_PCT = Decimal("-90")
SHOCK_MAX_PCT = Decimal("100")
SHOCKS_KEPT = 1000
EVENTS_KEPT = 1000


# --- Agent configurations -----------------------------------------------------------------------


def _first_error(exc: ValidationError) -> InvalidInput:
    if hasattr(exc, "error_dict"):
        field, errors = next(iter(exc.error_dict.items()))
        return InvalidInput(errors[0].messages[0], field=None if field == "__all__" else field)
    return InvalidInput(exc.messages[0])


def _valid_limits(limits: dict) -> dict:
    """The limits given, checked against the agent's bounds and converted (an agent's position
    and order size are at least one lot)."""
    form = AgentLimitsForm(data=limits)
    form.fields = {name: field for name, field in form.fields.items() if name in limits}
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise InvalidInput(errors[0], field=field)
    return form.cleaned_data


def _sync_account(config: AgentConfig, limits: dict) -> Account:
    """The config's account, created with the initial bankroll, or renamed after the config and
    its `limits` (those given) set."""
    account = config.account if config.account_id else None
    if account is None:
        account = Account.objects.filter(name=config.account_name).first()
        if account is not None and (
            account.user_id is not None or AgentConfig.objects.filter(account=account).exists()
        ):
            raise Conflict(
                f"The account name {config.account_name!r} is taken.",
                field="name",
                code="account_name_taken",
            )
        if account is None:  # else: the account of a deleted agent of that name, taken over
            return exchange_services.account_create(name=config.account_name, **limits)
    exchange_services.account_rename(account=account, name=config.account_name)
    return exchange_services.account_limits_set(account=account, **limits)


@transaction.atomic
def agent_config_save(*, config: AgentConfig, **limits) -> AgentConfig:
    """Validates and stores an agent config (new or edited) and its limits, which live on its
    account: `initial_cash`, `min_bankroll`, `max_position`, `max_order_qty` (see
    `agents.forms.AgentLimitsForm`). Its parameters are checked against its strategy (defaults
    filled in) and its account is created — with the initial bankroll — or renamed after it,
    and given the limits: those passed, the rest the defaults for a new agent and left as they
    are for an existing one. A running runner picks the change up within a second."""
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise TypeError(f"unknown limits: {', '.join(sorted(unknown))}")
    try:
        config.full_clean(exclude=["account"])
    except ValidationError as exc:
        raise _first_error(exc) from None
    limits = {name: value for name, value in limits.items() if value is not None}
    if not config.account_id:
        limits = {**DEFAULT_LIMITS, **limits}
    limits = _valid_limits(limits)
    config.account = _sync_account(config, limits)
    config.save()
    return config


def agent_config_create(
    *, name: str, strategy: str, symbol: str, params: dict | None = None, **fields
) -> AgentConfig:
    """A new agent: `fields` are the config's own (`wake_rate_hz`, `enabled`) and its limits
    (`initial_cash`, `min_bankroll`, `max_position`, `max_order_qty`; defaults for those left
    out)."""
    instrument = exchange_selectors.instrument_get(symbol)
    if instrument is None:
        raise NotFound(f"Unknown symbol {symbol!r}.", field="symbol", code="unknown_symbol")
    limits = {name: fields.pop(name) for name in LIMITS if name in fields}
    config = AgentConfig(
        name=name, strategy=strategy, instrument=instrument, params=params or {}, **fields
    )
    return agent_config_save(config=config, **limits)


def agent_config_ensure(
    *, name: str, strategy: str, symbol: str, params: dict | None = None, **fields
) -> tuple[AgentConfig, bool]:
    """An agent config of that name, created as given when missing (an existing one is left as
    staff configured it)."""
    existing = AgentConfig.objects.filter(name=name).first()
    if existing is not None:
        return existing, False
    config = agent_config_create(
        name=name, strategy=strategy, symbol=symbol, params=params, **fields
    )
    return config, True


def agent_configs_set_enabled(*, configs, enabled: bool) -> int:
    """Enables or disables agents (a runner starts or stops them within a second; a stopped one
    cancels its orders)."""
    pks = [c.pk for c in configs]
    return AgentConfig.objects.filter(pk__in=pks).update(enabled=enabled, updated_at=timezone.now())


@transaction.atomic
def agent_config_duplicate(*, config: AgentConfig) -> AgentConfig:
    """A copy of an agent with a new name (`name-2`, `name-3`, ...) and an account of its own,
    created disabled so it can be adjusted before it trades."""
    base = config.name
    taken = set(
        AgentConfig.objects.filter(name__startswith=f"{base}-").values_list("name", flat=True)
    )
    number = 2
    while f"{base}-{number}" in taken or len(f"{base}-{number}") > 64:
        if len(f"{base}-{number}") > 64:
            base = base[: 64 - len(f"-{number}")]
            continue
        number += 1
    copy = AgentConfig(
        name=f"{base}-{number}",
        strategy=config.strategy,
        instrument=config.instrument,
        params=dict(config.params),
        wake_rate_hz=config.wake_rate_hz,
        enabled=False,
    )
    return agent_config_save(config=copy, **agent_config_limits(config))


# --- Simulation controls ------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@contextmanager
def _sim_lock():
    try:
        lock = keys.client().lock(keys.sim_lock(), timeout=60, blocking_timeout=30)
        if not lock.acquire():
            raise Unavailable("Another simulation change is in progress; try again.")
    except redis.RedisError as exc:
        raise Unavailable("The simulation state cannot be changed right now.") from exc
    try:
        yield keys.client()
    finally:
        try:
            lock.release()
        except redis.RedisError:  # expired: nothing to release
            pass


def _publish(status: dict) -> None:
    message = json.dumps({"type": "sim", **status})
    try:
        keys.client().publish(keys.sim_channel(), message)
    except redis.RedisError:
        logger.warning("sim notice not published", exc_info=True)


def _changed() -> dict:
    """The new status, published once the surrounding transaction (if any) commits."""
    status = sim_status()
    transaction.on_commit(lambda: _publish(status))
    return status


def _instruments() -> list:
    return [
        exchange_selectors.instrument_get(symbol)
        for symbol in sorted(exchange_selectors.instrument_symbols_enabled())
    ]


def _halt_all(halted: bool) -> None:
    for instrument in _instruments():
        exchange_services.instrument_halt_set(instrument=instrument, halted=halted)


def _set_state(client, state: str, **extra: str) -> None:
    client.hset(keys.sim_state(), mapping={"state": state, "changed_at": _now_iso(), **extra})


def _log_event(client, kind: str, **fields: str) -> None:
    """One line of the simulation's history (`sim_events`), for the chart's markers."""
    event = {"kind": kind, "at": _now_iso(), **fields}
    client.xadd(keys.sim_events(), event, maxlen=EVENTS_KEPT, approximate=True)


def sim_pause() -> dict:
    """Halts every book (new orders refused by the gateway and the engine) and idles the
    agents; their resting orders stay."""
    with _sim_lock() as client:
        pending = reset_pending()
        if pending is not None and pending.get("resume"):
            pending["resume"] = False  # the reset in progress completes paused
            client.hset(keys.sim_state(), "reset_pending", json.dumps(pending))
        _halt_all(True)
        _set_state(client, "paused")
        _log_event(client, "pause")
    return _changed()


def sim_resume() -> dict:
    with _sim_lock() as client:
        if reset_pending() is not None:
            raise Conflict(
                "A reset is in progress: the simulation resumes once it completes.",
                code="reset_in_progress",
            )
        _halt_all(False)
        _set_state(client, "running")
        _log_event(client, "resume")
    return _changed()


_instrument_command = gateway.blocking(gateway.instrument_command)


def sim_reset() -> dict:
    """Starts a reset: halts every book, sends RESET to each (the engine cancels every resting
    order and zeroes its positions; the recorder marks the orders cancelled), and leaves the
    rest to `sim_reset_complete`: once the recorder has recorded every RESET, accounts go back
    to their initial cash and flat and — if the simulation was running — the books resume.
    Runners clear their agents' state when they read the RESET in the event streams."""
    with _sim_lock() as client:
        raw = client.hgetall(keys.sim_state())
        pending = json.loads(raw["reset_pending"]) if raw.get("reset_pending") else None
        resume = pending["resume"] if pending else raw.get("state", "running") == "running"
        _halt_all(True)
        after = {}
        for instrument in _instruments():
            after[instrument.symbol] = exchange_selectors.event_stream_last_id(instrument.symbol)
            _instrument_command(instrument=instrument, command="reset")
        pending = {"after": after, "resume": resume, "at": _now_iso()}
        _set_state(client, "paused", reset_pending=json.dumps(pending))
        _log_event(client, "reset")
    sim_reset_complete()  # at once if the engine and the recorder are that quick
    return _changed()


def sim_reset_complete() -> bool:
    """Completes a reset in progress once the recorder has recorded every RESET it sent; True
    when no reset is pending any more. Runners call it while they run; `manage.py sim reset`
    waits on it. Safe to call from several processes at once."""
    pending = reset_pending()
    if pending is None:
        return True
    for symbol, after in pending["after"].items():
        seq = exchange_selectors.reset_seq_after(symbol, after)
        if seq is None or exchange_selectors.recorded_seq(symbol) < seq:
            return False
    with _sim_lock() as client:
        if reset_pending() != pending:
            return reset_pending() is None  # completed (or restarted) by someone else meanwhile
        # Every RESET is recorded and the books are halted: nothing recorded from now on can be
        # from before the reset.
        exchange_services.accounts_reset()
        if pending.get("resume"):
            _halt_all(False)
            _set_state(client, "running")
        else:
            _set_state(client, "paused")
        client.hdel(keys.sim_state(), "reset_pending")
    _changed()
    logger.info("sim reset complete resume=%s", pending.get("resume"))
    return True


def _valid_pct(pct) -> Decimal:
    try:
        value = parse_decimal(pct)
    except DecimalInputError as error:
        finite = " finite" if error.reason == "non_finite" else ""
        raise InvalidInput(
            f"pct must be a{finite} number.", field="pct", code="invalid_number"
        ) from None
    if value == 0 or not SHOCK_MIN_PCT <= value <= SHOCK_MAX_PCT:
        raise InvalidInput(
            f"pct must be between {SHOCK_MIN_PCT} and {SHOCK_MAX_PCT}, and not 0.",
            field="pct",
            code="invalid_pct",
        )
    return value


def sim_shock(*, symbol: str, pct: Decimal) -> dict:
    """A jump of `pct` percent in an instrument's fundamental value and reference price; the
    agents react through their own logic (value traders re-price, market makers widen, ...)."""
    value = _valid_pct(pct)
    instrument = exchange_selectors.instrument_get(symbol) if isinstance(symbol, str) else None
    if instrument is None or not instrument.enabled:
        raise NotFound(
            f"Unknown symbol {str(symbol)[:40]!r}.", field="symbol", code="unknown_symbol"
        )
    with _sim_lock() as client:
        exchange_services.instrument_reference_price_set(
            instrument=instrument,
            price=instrument.reference_price * (1 + value / 100),
        )
        shock = {"symbol": instrument.symbol, "pct": decimal_str(value), "at": _now_iso()}
        client.xadd(keys.sim_shocks(), shock, maxlen=SHOCKS_KEPT, approximate=True)
        client.hset(keys.sim_state(), "last_shock", json.dumps(shock))
        _log_event(client, "shock", symbol=shock["symbol"], pct=shock["pct"])
    return _changed()
