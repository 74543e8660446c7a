"""Read-only queries of the exchange's state."""

import importlib
from dataclasses import dataclass
from decimal import Decimal

import redis

from exchange import journal


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


def book_snapshot(symbol: str) -> dict | None:
    """The engine's latest L2 book of a symbol (ticks and lots), or None if it never wrote one."""
    try:
        return journal.read_book(symbol)
    except redis.RedisError:
        return None


def mark_price(instrument) -> Decimal:
    """Where an instrument's positions are valued: the mid of the book, else the last trade,
    else its reference price."""
    from exchange.models import Trade

    book = book_snapshot(instrument.symbol)
    if book and book.get("bids") and book.get("asks"):
        mid_ticks = Decimal(book["bids"][0][0] + book["asks"][0][0]) / 2
        return instrument.tick_size * mid_ticks
    last = Trade.objects.filter(instrument=instrument).order_by("-seq").first()
    if last is not None:
        return last.price
    return instrument.reference_price


def account_equity(account) -> Decimal:
    """Cash plus every position valued at its instrument's mark."""
    equity = account.cash
    for position in account.positions.select_related("instrument").exclude(quantity=0):
        equity += position.quantity * mark_price(position.instrument)
    return equity
