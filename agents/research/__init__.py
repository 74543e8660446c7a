"""Research mode: a fast, seeded, headless simulation of a trading day on the Rust book with the
live agents' strategy classes, exported as LOBSTER data with a realism report.

    >>> from agents.research import preset, simulate
    >>> result = simulate(preset("small"), seed=1, out_dir="out")   # doctest: +SKIP

See ``docs/research.md``. Nothing here needs Redis or a database (``from_db`` only converts rows
the caller fetched)."""

from .config import ConfigError, SimConfig, config_from_mapping, load_config
from .presets import PRESETS, preset
from .run import RunResult, simulate, simulate_seeds

__all__ = [
    "PRESETS",
    "ConfigError",
    "RunResult",
    "SimConfig",
    "config_from_mapping",
    "load_config",
    "preset",
    "simulate",
    "simulate_seeds",
]
