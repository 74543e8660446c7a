"""Reads of the agents app: the simulation's state, the leaderboard, the enabled population, an
agent's limits (read from its account, where they live)."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import redis

from agents import keys
from agents.models import AgentConfig
from agents.strategies import validate_params
from exchange import selectors as exchange_selectors
from exchange.errors import Unavailable
from exchange.protocol.decimals import money_str, qty_str

#: A runner that has not written its heartbeat (or an agent its status) for this long is gone.
STALE_MS = 3000
STATES = ("running", "paused")
AGENT_STATES = ("running", "paused", "stopped", "disabled", "offline")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _read(fn):
    try:
        return fn()
    except redis.RedisError as exc:
        raise Unavailable("The simulation state cannot be read right now.") from exc


def sim_state_raw() -> dict[str, str]:
    return _read(lambda: keys.client().hgetall(keys.sim_state()))


def reset_pending() -> dict | None:
    """The reset in progress (which event streams it waits for, whether to resume after), or
    None."""
    raw = _read(lambda: keys.client().hget(keys.sim_state(), "reset_pending"))
    return json.loads(raw) if raw else None


def runners_alive() -> list[dict]:
    """The heartbeats of the runners seen within `STALE_MS`."""
    raw = _read(lambda: keys.client().hgetall(keys.runners()))
    now = _now_ms()
    beats = [json.loads(value) for value in raw.values()]
    return [beat for beat in beats if now - int(beat.get("ts_ms", 0)) < STALE_MS]


def sim_status() -> dict:
    """{"state": "running" | "paused", "changed_at": ISO-8601 str | None,
    "runner_alive": bool, "last_shock": {"symbol", "pct", "at"} | None}"""
    raw = sim_state_raw()
    state = raw.get("state")
    shock = raw.get("last_shock")
    return {
        "state": state if state in STATES else "running",
        "changed_at": raw.get("changed_at") or None,
        "runner_alive": bool(runners_alive()),
        "last_shock": json.loads(shock) if shock else None,
    }


def sim_events(*, limit: int = 200) -> list[dict]:
    """The simulation's last `limit` events, oldest first: {"kind": "pause" | "resume" | "reset"
    | "shock", "at": ISO time, and for a shock "symbol" and "pct"}."""
    raw = _read(lambda: keys.client().xrevrange(keys.sim_events(), count=limit))
    return [fields for _, fields in reversed(raw)]


def agent_statuses() -> dict[str, dict]:
    """The runners' latest status of each agent they run, by name (stale ones included; see
    `ts_ms`)."""
    raw = _read(lambda: keys.client().hgetall(keys.agent_status()))
    return {name: json.loads(value) for name, value in raw.items()}


def leaderboard(symbol: str | None = None) -> list[dict]:
    """One row per agent config, best equity first:
    {"name", "strategy", "symbol", "equity", "realized_pnl", "unrealized_pnl", "fees_paid",
     "position", "open_orders", "status"} — equity and realized P&L net of fees; money to the
    currency's decimals and the position to its instrument's lot (`exchange.protocol.decimals`),
    open_orders an int, status one of "running" | "paused" | "stopped" | "disabled" | "offline".

    Money and positions are the database's (the recorder's projection, marked like the account
    page: mid, else last trade, else reference price), so the leaderboard and an agent's account
    agree; the status and the open orders are the runner's live view while it runs."""
    # Cash (with the configs) and positions from one state of the database: read apart, a fill
    # committed between them showed in one and not the other.
    with exchange_selectors.consistent_reads():
        configs = list(AgentConfig.objects.select_related("account", "instrument"))
        if symbol:
            configs = [c for c in configs if c.instrument.symbol == symbol]
        if not configs:
            return []
        positions = exchange_selectors.position_list(account_ids=[c.account_id for c in configs])
    instruments = {c.instrument.symbol: c.instrument for c in configs}
    instruments.update({p.instrument.symbol: p.instrument for p in positions})
    marks = exchange_selectors.mark_prices(instruments.values())
    by_account: dict[int, list] = {}
    for position in positions:
        by_account.setdefault(position.account_id, []).append(position)
    statuses = agent_statuses()
    offline = [c.account_id for c in configs if not _fresh(statuses.get(c.name))]
    db_open = exchange_selectors.open_order_counts(account_ids=offline) if offline else {}

    rows = []
    for config in configs:
        equity = config.account.cash
        realized = unrealized = fees = position_qty = Decimal(0)
        for position in by_account.get(config.account_id, []):
            mark = marks[position.instrument.symbol]
            equity += position.quantity * mark
            realized += position.realized_pnl
            unrealized += position.unrealized_pnl(mark)
            fees += position.fees_paid
            if position.instrument_id == config.instrument_id:
                position_qty = position.quantity
        live = statuses.get(config.name)
        if not config.enabled:
            status = "disabled"
        elif not _fresh(live):
            status = "offline"
        else:
            status = live.get("state") if live.get("state") in AGENT_STATES else "offline"
        open_orders = (
            int(live.get("open_orders", 0)) if _fresh(live) else db_open.get(config.account_id, 0)
        )
        rows.append(
            {
                "name": config.name,
                "strategy": config.strategy,
                "symbol": config.instrument.symbol,
                "equity": equity,
                "realized_pnl": realized,
                "unrealized_pnl": unrealized,
                "fees_paid": fees,
                "position": position_qty,
                "open_orders": open_orders,
                "status": status,
            }
        )
    rows.sort(key=lambda row: (-row["equity"], row["name"]))
    for row in rows:
        for field in ("equity", "realized_pnl", "unrealized_pnl", "fees_paid"):
            row[field] = money_str(row[field])
        row["position"] = qty_str(row["position"], instruments[row["symbol"]].lot_size)
    return rows


def _fresh(status: dict | None) -> bool:
    return status is not None and _now_ms() - int(status.get("ts_ms", 0)) < STALE_MS


def agent_config_limits(config: AgentConfig) -> dict:
    """An agent's limits, which live on its account: {"initial_cash" (Decimal), "min_bankroll"
    (Decimal), "max_position" (int lots, the account's default_max_position), "max_order_qty"
    (int lots)} — the names `agents.services.agent_config_save` takes them by."""
    return exchange_selectors.account_limits(config.account)


def agent_configs_enabled(symbols: list[str] | None = None) -> list[dict]:
    """The enabled agent population as plain data (for the research simulator's --from-db and
    --fork): {"name", "account_id", "strategy" (a key of agents.strategies.STRATEGIES), "symbol",
     "params" (dict, validated), "wake_rate_hz" (float, mean wakes per second),
     "max_position" (int lots), "min_bankroll" (Decimal), "initial_cash" (Decimal) — the
     limits, from the agent's account —
     "tick_size" (Decimal), "lot_size" (Decimal), "reference_price" (Decimal),
     "price_band_pct" (Decimal), "volatility_move_pct" (Decimal), "volatility_window_seconds",
     "volatility_pause_seconds", "maker_fee_bps", "taker_fee_bps" (int) — the instrument's rules}"""
    configs = AgentConfig.objects.filter(enabled=True, instrument__enabled=True).select_related(
        "account", "instrument"
    )
    if symbols is not None:
        configs = configs.filter(instrument__symbol__in=list(symbols))
    return [
        {
            "name": c.name,
            "account_id": c.account_id,
            "strategy": c.strategy,
            "symbol": c.instrument.symbol,
            "params": validate_params(c.strategy, c.params).to_dict(),
            "wake_rate_hz": float(c.wake_rate_hz),
            "max_position": int(c.account.default_max_position),
            "min_bankroll": c.account.min_bankroll,
            "initial_cash": c.account.initial_cash,
            "tick_size": c.instrument.tick_size,
            "lot_size": c.instrument.lot_size,
            "reference_price": c.instrument.reference_price,
            "price_band_pct": c.instrument.price_band_pct,
            "volatility_move_pct": c.instrument.volatility_move_pct,
            "volatility_window_seconds": c.instrument.volatility_window_seconds,
            "volatility_pause_seconds": c.instrument.volatility_pause_seconds,
            "maker_fee_bps": c.instrument.maker_fee_bps,
            "taker_fee_bps": c.instrument.taker_fee_bps,
        }
        for c in configs
    ]


def agent_configs_for_runner(symbols: list[str] | None = None):
    """The configs a runner serves (enabled or not: it must stop the disabled ones), with their
    accounts and instruments."""
    configs = AgentConfig.objects.select_related("account", "instrument").filter(
        instrument__enabled=True
    )
    if symbols is not None:
        configs = configs.filter(instrument__symbol__in=list(symbols))
    return list(configs)


def agent_configs_version(symbols: list[str] | None = None) -> tuple:
    """A cheap fingerprint of the configs a runner serves: it changes with any edit, addition
    or deletion (what the runner polls to pick up admin changes without a restart)."""
    configs = AgentConfig.objects.filter(instrument__enabled=True)
    if symbols is not None:
        configs = configs.filter(instrument__symbol__in=list(symbols))
    return tuple(configs.order_by("pk").values_list("pk", "updated_at"))
