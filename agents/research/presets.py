"""Ready-made populations. ``small`` is for tests and quick looks (about fifty agents);
``rmsc04`` is sized like ABIDES' RMSC04 reference market — 2 market makers, 100 value agents,
12 momentum agents and 1,000 noise agents — with parameters tuned so that its 1-minute returns
show the four stylized facts (see ``docs/research.md``)."""

from __future__ import annotations

import copy
from typing import Any

from .config import SimConfig, config_from_mapping

__all__ = ["PRESETS", "preset", "preset_data"]

_FUNDAMENTAL = {
    "half_life_s": 7200.0,
    "sd": 0.006,
    "jump_rate_per_hour": 3.0,
    "jump_sd": 0.003,
    "step_s": 1.0,
}
_ACTIVITY = {"sd": 1.2, "half_life_s": 600.0, "step_s": 1.0}

_MAKER = {
    "levels": 5,
    "size": 20,
    "half_spread": 1.0,
    "spacing": 1,
    "skew": 0.05,
    "max_inventory": 400,
    "shock_ticks": 15,
    "widen_factor": 2.0,
    "widen_s": 10.0,
}
_NOISE = {
    "size_min": 1,
    "size_max": 200,
    "size_alpha": 1.6,
    "offset_mean": 3.0,
    "cross_prob": 0.15,
    "market_prob": 0.3,
    "cancel_prob": 0.3,
    "max_open": 2,
    "order_ttl_s": 120.0,
    "stale_ticks": 40,
}
_VALUE = {
    "noise_ticks": 1.5,
    "bias_ticks": 1.0,
    "threshold_ticks": 1.0,
    "aggressive_ticks": 3.0,
    "slip_ticks": 3,
    "lots_per_tick": 40.0,
    "trade_size": 40,
    "max_position": 500,
}
_MOMENTUM = {
    "fast_s": 20.0,
    "slow_s": 120.0,
    "threshold_ticks": 2.0,
    "trade_size": 3,
    "max_position": 30,
    "aggression_ticks": 1,
}
_LATENCY_FAST = {"base_us": 50.0, "spread": 0.2, "jitter_us": 10.0}
_LATENCY_SLOW = {"base_us": 2000.0, "spread": 0.5, "jitter_us": 500.0}


def _population(scale: float) -> list[dict[str, Any]]:
    """The RMSC04 mix; ``scale`` shrinks the crowd (not the makers) for the small preset while
    raising each agent's rate, so the order flow stays alike."""
    return [
        {
            "name": "maker",
            "strategy": "market_maker",
            "count": 2,
            "wake_rate_hz": 2.0,
            "max_position": 1000,
            "latency": _LATENCY_FAST,
            "params": _MAKER,
        },
        {
            "name": "value",
            "strategy": "value",
            "count": max(1, round(100 * scale)),
            "wake_rate_hz": 0.25 / scale,
            "max_position": 600,
            "latency": _LATENCY_SLOW,
            "params": _VALUE,
        },
        {
            "name": "momentum",
            "strategy": "momentum",
            "count": max(1, round(12 * scale)),
            "wake_rate_hz": 0.1 / scale,
            "max_position": 50,
            "latency": _LATENCY_SLOW,
            "params": _MOMENTUM,
        },
        {
            "name": "noise",
            "strategy": "noise",
            "count": max(1, round(1000 * scale)),
            "wake_rate_hz": 0.03 / scale,
            "max_position": 1000,
            "latency": _LATENCY_SLOW,
            "params": _NOISE,
        },
    ]


PRESETS: dict[str, dict[str, Any]] = {
    "rmsc04": {
        "symbol": "ACME",
        "date": "2024-01-02",
        "tick_size": "0.01",
        "lot_size": 1,
        "reference_price": "100.00",
        "start": "09:30",
        "end": "16:00",
        "levels": 10,
        "fundamental": _FUNDAMENTAL,
        "activity": _ACTIVITY,
        "agents": _population(1.0),
    },
    "small": {
        "symbol": "ACME",
        "date": "2024-01-02",
        "tick_size": "0.01",
        "lot_size": 1,
        "reference_price": "100.00",
        "start": "09:30",
        "end": "09:45",
        "levels": 5,
        "fundamental": _FUNDAMENTAL,
        "activity": _ACTIVITY,
        "agents": _population(0.02),
        "shocks": [{"at": "09:36", "pct": -1.0}],
        "halts": [{"start": "09:40", "end": "09:41"}],
    },
}


def preset_data(name: str) -> dict[str, Any]:
    """A deep copy of the preset's plain data (to edit and validate)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r} (expected one of: {', '.join(PRESETS)})")
    return copy.deepcopy(PRESETS[name])


def preset(name: str) -> SimConfig:
    return config_from_mapping(preset_data(name))
