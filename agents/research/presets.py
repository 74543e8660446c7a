"""Ready-made populations. ``small`` is for tests and quick looks (about fifty agents);
``rmsc04`` is sized like ABIDES' RMSC04 reference market — 2 market makers, 100 value agents,
12 momentum agents and 1,000 noise agents — with parameters tuned so that its 1-minute returns
show the four stylized facts (see ``docs/research.md``); ``impact`` is ``rmsc04`` with TWAP
metaorders of sizes spanning two decades through the day, to measure price impact
(``impact.py``)."""

from __future__ import annotations

import copy
import math
import random
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


#: The impact preset's metaorders: how many a day, their sizes (lots; log-spaced between the two,
#: about 4e-5 to 4e-3 of rmsc04's ~4.6 million lots a day), and the rate they are worked at
#: (lots/s: a fifth of rmsc04's average ~200 lots/s, so the horizon grows with the size, up to
#: 500 s). Larger ones do not fit this population: what absorbs a one-sided flow is mostly the
#: value traders' appetite, 100 agents of at most 500 lots each, and a 50,000-lot metaorder
#: exhausts it — sizes up to 140,000 lots crashed the mid to about $1 (see docs/research.md).
IMPACT_METAORDERS = 80
IMPACT_SIZES = (200, 20_000)
IMPACT_RATE = 40.0
_SESSION_S = 6.5 * 3600


def _metaorders() -> list[dict[str, Any]]:
    """One TWAP agent per metaorder (a group each: sizes, sides and start times differ). Sizes
    are log-spaced; sides alternate along the sizes, so each side gets the same spread of sizes;
    start times are a shuffled even grid over what is left of the day after each one's horizon,
    so size and time of day are unrelated. TWAP, not POV: POV counts the market's volume in the
    view's window of recent trades, which overflows between wakes at this market's ~30 trades a
    second. They wake at 1 Hz whatever the activity (an algorithm's clock is its own)."""
    low, high = IMPACT_SIZES
    order = list(range(IMPACT_METAORDERS))
    random.Random(2024).shuffle(order)  # a fixed shuffle: the preset is plain, constant data
    groups = []
    for k in range(IMPACT_METAORDERS):
        quantity = round(low * (high / low) ** (k / (IMPACT_METAORDERS - 1)))
        horizon = quantity / IMPACT_RATE
        # Starts from a minute in, and ends ten minutes before the close at the latest.
        room = _SESSION_S - horizon - 660.0
        start = 60.0 + room * (order[k] + 0.5) / IMPACT_METAORDERS
        groups.append(
            {
                "name": f"meta-{k + 1:02d}",
                "strategy": "twap",
                "count": 1,
                "wake_rate_hz": 1.0,
                "follows_activity": False,
                "max_position": quantity,
                "latency": _LATENCY_FAST,
                "params": {
                    "side": "buy" if k % 2 == 0 else "sell",
                    "quantity": quantity,
                    "horizon_s": float(math.ceil(horizon)),
                    "delay_s": float(round(start)),
                    # Rests passively until 2 % of the parent order behind (at least 20 lots).
                    "catch_up_lots": max(20, quantity // 50),
                },
            }
        )
    return groups


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
# The RMSC04 day with 80 metaorders worked through it (TWAP agents of 200-20,000 lots), for the
# square-root impact law (docs/research.md).
PRESETS["impact"] = {**PRESETS["rmsc04"], "agents": _population(1.0) + _metaorders()}


def preset_data(name: str) -> dict[str, Any]:
    """A deep copy of the preset's plain data (to edit and validate)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r} (expected one of: {', '.join(PRESETS)})")
    return copy.deepcopy(PRESETS[name])


def preset(name: str) -> SimConfig:
    return config_from_mapping(preset_data(name))
