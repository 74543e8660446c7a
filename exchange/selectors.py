"""Read-only queries of the exchange's state."""

import importlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """Whether the Rust matching engine's Python extension can be imported, and its version."""

    available: bool
    version: str | None = None
    error: str | None = None


def engine_status_get(*, module_name: str = "flashbook_engine") -> EngineStatus:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return EngineStatus(available=False, error=str(exc) or exc.__class__.__name__)
    version = getattr(module, "__version__", None)
    return EngineStatus(available=True, version=str(version) if version is not None else None)


def instrument_symbols_enabled() -> list[str]:
    """Symbols the engine should serve: every enabled instrument, halted or not."""
    from exchange.models import Instrument

    return list(Instrument.objects.filter(enabled=True).values_list("symbol", flat=True))
