"""Which files a run writes: the tables (``--outputs``) and the formats of the large ones
(``--formats``).

A full day's order book file is most of a run's bytes (hundreds of MB), and a researcher who
only studies trades should not have to write it. The simulator still keeps the level mirror the
order book file is written from — the agents' views read it — so leaving a table out saves disk,
not the mirror's work.

* tables: ``messages`` and ``orderbook`` (LOBSTER), ``trades``, ``agents``, ``bars`` and the
  ``report``; ``summary.json`` and ``manifest.json`` are always written (they are small, and the
  manifest is what ``simulate verify`` re-runs from);
* formats of the three large tables (messages, orderbook, trades): ``csv`` and/or ``parquet``.
  ``agents.csv`` and ``bars.csv`` are a few hundred rows: CSV only.

By default every table is written as CSV (as before), plus Parquet copies of the messages and
trades — cheap, about 1.5 s of CPU on a full day — but not of the order book: converting its
~550 MB takes ~9 s more, a sixth of the day's run, so it is written when Parquet is asked for
(``--formats parquet`` or ``csv,parquet``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ConfigError

__all__ = ["COLUMNAR_TABLES", "FORMATS", "TABLES", "OutputChoice", "parse_output_choice"]

TABLES = ("messages", "orderbook", "trades", "agents", "bars", "report")
#: The tables that also come as Parquet (the others are small).
COLUMNAR_TABLES = ("messages", "orderbook", "trades")
FORMATS = ("csv", "parquet")
#: What gets a Parquet copy when no format is chosen: not the order book (see above).
DEFAULT_PARQUET = ("messages", "trades")


@dataclass(frozen=True)
class OutputChoice:
    """What to write; the default is every table as CSV, with Parquet copies of the cheap ones
    (``DEFAULT_PARQUET``)."""

    tables: frozenset[str] = frozenset(TABLES)
    formats: frozenset[str] = frozenset(FORMATS)
    #: The columnar tables that get a Parquet copy when ``parquet`` is among the formats.
    parquet_tables: frozenset[str] = frozenset(DEFAULT_PARQUET)

    def wants(self, table: str) -> bool:
        return table in self.tables

    def wants_csv(self, table: str) -> bool:
        """Whether ``table``'s CSV is kept in the output directory."""
        if table not in self.tables:
            return False
        return table not in COLUMNAR_TABLES or "csv" in self.formats

    def wants_parquet(self, table: str) -> bool:
        return table in self.parquet_tables and table in self.tables and "parquet" in self.formats

    def to_dict(self) -> dict:
        # Sorted in the documented order, so the manifest's bytes do not depend on set order.
        return {
            "tables": [t for t in TABLES if t in self.tables],
            "formats": [f for f in FORMATS if f in self.formats],
            "parquet_tables": [t for t in COLUMNAR_TABLES if t in self.parquet_tables],
        }

    @classmethod
    def from_dict(cls, data: dict) -> OutputChoice:
        chosen = parse_output_choice(",".join(data["tables"]), ",".join(data["formats"]))
        return OutputChoice(chosen.tables, chosen.formats, frozenset(data["parquet_tables"]))


def _names(text: str, allowed: tuple[str, ...], option: str) -> frozenset[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        listed = ", ".join(map(repr, unknown))
        raise ConfigError(option, f"unknown {listed} (expected some of: {', '.join(allowed)})")
    return frozenset(names)


def parse_output_choice(tables: str | None = None, formats: str | None = None) -> OutputChoice:
    """``"messages,trades"`` and ``"parquet"`` (comma-separated). No tables: all of them; no
    formats: CSV, and Parquet for the cheap tables; formats named: each for every table."""
    chosen_tables = frozenset(TABLES) if tables is None else _names(tables, TABLES, "--outputs")
    if formats is None:
        return OutputChoice(chosen_tables)
    chosen_formats = _names(formats, FORMATS, "--formats")
    if not chosen_formats:
        raise ConfigError("--formats", "choose csv, parquet or both")
    return OutputChoice(chosen_tables, chosen_formats, frozenset(COLUMNAR_TABLES))
