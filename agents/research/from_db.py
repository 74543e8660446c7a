"""A simulation configuration from the agent population configured in the admin.

The rows come from ``agents.selectors.agent_configs_enabled()`` (plain data, one row per agent);
this module only turns them into a :class:`SimConfig`, so it needs no database itself. The
environment (fundamental value, activity) is the ``rmsc04`` preset's, the instrument (tick size,
lot size, reference price, price band) is the rows'."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .config import ConfigError, SimConfig, config_from_mapping
from .presets import preset_data

__all__ = ["config_from_agent_rows"]


def config_from_agent_rows(
    rows: Sequence[Mapping[str, Any]], *, symbol: str | None = None
) -> SimConfig:
    """One agent group per row (count 1, the row's name). With several symbols among the rows,
    ``symbol`` picks one; raises :class:`ConfigError` when there is nothing to simulate."""
    symbols = sorted({row["symbol"] for row in rows})
    if symbol is not None:
        rows = [row for row in rows if row["symbol"] == symbol]
        if not rows:
            raise ConfigError(
                "symbol",
                f"no enabled agents trade {symbol!r}"
                + (f" (symbols with agents: {', '.join(symbols)})" if symbols else ""),
            )
    elif len(symbols) > 1:
        raise ConfigError(
            "symbol", f"enabled agents trade several symbols; pick one with --symbol: "
            f"{', '.join(symbols)}",
        )  # fmt: skip
    if not rows:
        raise ConfigError("agents", "no enabled agents are configured (add some in the admin)")
    first = rows[0]
    lot = Decimal(first["lot_size"])
    if lot != lot.to_integral_value():
        raise ConfigError("lot_size", f"LOBSTER sizes are whole shares; lot size {lot} is not")
    data = preset_data("rmsc04")
    data.update(
        {
            "symbol": first["symbol"],
            "tick_size": str(first["tick_size"]),
            "lot_size": int(lot),
            "reference_price": str(first["reference_price"]),
            "price_band_pct": str(first.get("price_band_pct", SimConfig.price_band_pct)),
            "volatility_move_pct": str(
                first.get("volatility_move_pct", SimConfig.volatility_move_pct)
            ),
            "volatility_window_s": first.get(
                "volatility_window_seconds", SimConfig.volatility_window_s
            ),
            "volatility_pause_s": first.get(
                "volatility_pause_seconds", SimConfig.volatility_pause_s
            ),
            "maker_fee_bps": first.get("maker_fee_bps", SimConfig.maker_fee_bps),
            "taker_fee_bps": first.get("taker_fee_bps", SimConfig.taker_fee_bps),
            "agents": [
                {
                    "name": row["name"],
                    "strategy": row["strategy"],
                    "count": 1,
                    "wake_rate_hz": float(row["wake_rate_hz"]),
                    "max_position": int(row["max_position"]) if row["max_position"] else None,
                    "initial_cash": str(row["initial_cash"]),
                    "params": dict(row["params"]),
                }
                for row in sorted(rows, key=lambda r: r["name"])
            ],
        }
    )
    data["fundamental"] = {k: v for k, v in data["fundamental"].items() if k != "mean"}
    return config_from_mapping(data)
