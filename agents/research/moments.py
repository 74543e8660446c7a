"""Summary statistics ("moments") of a market, read from LOBSTER files alone.

The calibration (``calibrate.py``) matches these between a target — real LOBSTER data or a
simulated run's output — and candidate simulations, so they use only what every LOBSTER pair
holds: the message file (time, type, order id, size, price, direction) and the order book file
(whose first four columns are the best ask, its size, the best bid, its size). The session is
read from the file name, ``TICKER_DATE_STARTMS_ENDMS_message_N.csv``, as LOBSTER names its files
and ``simulate`` writes them, because the first and last messages need not mark its ends.

Several pairs (several days, or ``--runs`` seeds in ``seed-N`` folders) are pooled: counts and
durations are summed and returns never span two files.

The moments (``MOMENTS``):

* ``submissions_per_s``: new limit orders (type 1) per second of session;
* ``trades_per_s``: marketable orders that traded, per second. A run of executions (types 4 and
  5) with one time stamp and one direction is one incoming order sweeping the book;
* ``volume_per_s``: shares executed (types 4 and 5) per second;
* ``mean_log_order_size``: the mean of ln(shares) of new limit orders;
* ``mean_log_trade_size``: the mean of ln(shares) of the marketable orders above;
* ``cancel_ratio``: partial cancellations and deletions (types 2 and 3) per new limit order;
* ``mean_spread_ticks``: the spread in ticks, weighted by how long each book lasted, while both
  sides are quoted;
* ``return_rms_1m``: the root mean square of 1-minute log returns of the mid (sampled at each
  whole minute of the session), and ``return_rms_10s`` the same at 10 seconds. Root mean square,
  not standard deviation: over a short session the mean return is noise, not drift.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .lobster import EMPTY_ASK_PRICE, EMPTY_BID_PRICE

__all__ = [
    "MOMENTS",
    "LobsterDay",
    "LobsterFileError",
    "find_lobster_pairs",
    "lobster_moments",
    "read_lobster_day",
]

#: The moments, in a fixed order, with a short description (the calibration's table prints them).
MOMENTS: dict[str, str] = {
    "submissions_per_s": "new limit orders per second",
    "trades_per_s": "marketable orders that traded per second",
    "volume_per_s": "shares executed per second",
    "mean_log_order_size": "mean ln(shares) of new limit orders",
    "mean_log_trade_size": "mean ln(shares) of marketable orders",
    "cancel_ratio": "cancellations per new limit order",
    "mean_spread_ticks": "time-weighted spread (ticks)",
    "return_rms_1m": "RMS of 1-minute mid log returns",
    "return_rms_10s": "RMS of 10-second mid log returns",
}

_MESSAGE_RE = re.compile(r"^(?P<stem>.+_(?P<start>\d+)_(?P<end>\d+))_message_(?P<levels>\d+)\.csv$")
NEW, PARTIAL_CANCEL, DELETE, EXECUTE, EXECUTE_HIDDEN = 1, 2, 3, 4, 5
#: LOBSTER prices are dollars x 10,000.
PRICE_UNIT = 10_000


class LobsterFileError(ValueError):
    """LOBSTER files that are missing, misnamed or unreadable; the message names the file."""


@dataclass(frozen=True)
class LobsterDay:
    """One message / order book pair as arrays (the order book's touch only)."""

    start_s: float
    end_s: float
    time: np.ndarray  # float64 seconds after midnight
    kind: np.ndarray  # int8 event type
    size: np.ndarray  # int64 shares
    direction: np.ndarray  # int8, -1 sell / 1 buy (of the limit order the row is about)
    ask: np.ndarray  # int64 best ask, dollars x 10,000 (EMPTY_ASK_PRICE when none)
    bid: np.ndarray  # int64 best bid (EMPTY_BID_PRICE when none)


def find_lobster_pairs(directory: str | Path) -> list[tuple[Path, Path]]:
    """Every ``(message, orderbook)`` CSV pair in ``directory`` or below it (``--runs`` writes
    ``seed-N`` folders), sorted by path. Raises :class:`LobsterFileError` when the directory is
    missing, holds no message file, or a message file has no order book file beside it."""
    root = Path(directory)
    if not root.is_dir():
        raise LobsterFileError(f"{root}: no such directory")
    pairs = []
    for message in sorted(root.rglob("*_message_*.csv")):
        if any(part.startswith(".") for part in message.relative_to(root).parts):
            continue  # scratch and hidden folders
        m = _MESSAGE_RE.match(message.name)
        if not m:
            raise LobsterFileError(
                f"{message}: not a LOBSTER message file name "
                "(expected TICKER_DATE_STARTMS_ENDMS_message_N.csv)"
            )
        book = message.with_name(f"{m['stem']}_orderbook_{m['levels']}.csv")
        if not book.is_file():
            raise LobsterFileError(f"{message}: its order book file {book.name} is missing")
        pairs.append((message, book))
    if not pairs:
        raise LobsterFileError(
            f"{root}: no LOBSTER files (TICKER_DATE_STARTMS_ENDMS_message_N.csv with its "
            "orderbook file)"
        )
    return pairs


def _read_csv(path: Path, names: list[str], types: dict[str, pa.DataType]) -> pa.Table:
    """The columns named in ``types`` of a header-less CSV whose columns are ``names``."""
    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)),
        )
    except (pa.ArrowInvalid, OSError) as error:
        raise LobsterFileError(f"{path}: cannot read it as LOBSTER CSV: {error}") from None


def read_lobster_day(message_path: str | Path, orderbook_path: str | Path) -> LobsterDay:
    """Reads one pair: the message file's time, type, size and direction and the order book's
    best ask and bid. Both files must have the same number of rows (one book per message)."""
    message_path, orderbook_path = Path(message_path), Path(orderbook_path)
    m = _MESSAGE_RE.match(message_path.name)
    if not m:
        raise LobsterFileError(f"{message_path}: not a LOBSTER message file name")
    start_s, end_s = int(m["start"]) / 1000, int(m["end"]) / 1000
    if end_s <= start_s:
        raise LobsterFileError(f"{message_path}: the session in its name ends before it starts")
    book_cols = ["ask", "ask_size", "bid", "bid_size"]
    if message_path.stat().st_size == 0 or orderbook_path.stat().st_size == 0:
        empty_f, empty_i = np.zeros(0), np.zeros(0, dtype=np.int64)
        return LobsterDay(start_s, end_s, empty_f, empty_i, empty_i, empty_i, empty_i, empty_i)
    # Only the columns used are converted; the reader skips the rest of each row.
    messages = _read_csv(
        message_path,
        ["time", "type", "order_id", "size", "price", "direction"],
        {"time": pa.float64(), "type": pa.int8(), "size": pa.int64(), "direction": pa.int8()},
    )
    # The order book file has 4 * levels columns; all are named so the reader accepts the rows.
    with open(orderbook_path, encoding="ascii") as f:
        width = f.readline().count(",") + 1
    book = _read_csv(
        orderbook_path,
        book_cols + [f"c{i}" for i in range(4, width)],
        {"ask": pa.int64(), "bid": pa.int64()},
    )
    if book.num_rows != messages.num_rows:
        raise LobsterFileError(
            f"{orderbook_path}: {book.num_rows} rows, but its message file has "
            f"{messages.num_rows} (one book row per message)"
        )
    return LobsterDay(
        start_s=start_s,
        end_s=end_s,
        time=messages.column("time").to_numpy(),
        kind=messages.column("type").to_numpy(),
        size=messages.column("size").to_numpy(),
        direction=messages.column("direction").to_numpy(),
        ask=book.column("ask").to_numpy(),
        bid=book.column("bid").to_numpy(),
    )


def _marketable_orders(day: LobsterDay) -> np.ndarray:
    """Shares of each marketable order: consecutive execution rows with one time stamp and one
    direction are one incoming order sweeping the book (the exchange stamps a command's events
    with one time)."""
    executed = (day.kind == EXECUTE) | (day.kind == EXECUTE_HIDDEN)
    index = np.flatnonzero(executed)
    if index.size == 0:
        return np.zeros(0, dtype=np.int64)
    t, d = day.time[index], day.direction[index]
    # A new order starts where the previous row was no execution, or had another time or side.
    starts = np.ones(index.size, dtype=bool)
    starts[1:] = (np.diff(index) != 1) | (np.diff(t) != 0) | (d[1:] != d[:-1])
    return np.add.reduceat(day.size[index], np.flatnonzero(starts))


def _mid_returns(day: LobsterDay, step_s: float) -> np.ndarray:
    """Log returns of the mid sampled at the session start + k * step (the book after the last
    message at or before that instant); a return with one side empty at either end is left out."""
    n = math.floor((day.end_s - day.start_s) / step_s + 1e-9)
    grid = day.start_s + step_s * np.arange(n + 1)
    row = np.searchsorted(day.time, grid, side="right") - 1
    valid = row >= 0
    row = np.where(valid, row, 0)
    ask, bid = day.ask[row], day.bid[row]
    valid &= (ask != EMPTY_ASK_PRICE) & (bid != EMPTY_BID_PRICE) & (ask > bid) & (bid > 0)
    mids = np.where(valid, (ask + bid) / 2.0, np.nan)
    returns = np.diff(np.log(mids))
    return returns[np.isfinite(returns)]


def _spread_time(day: LobsterDay, tick_units: float) -> tuple[float, float]:
    """(integral of the spread in ticks over two-sided time, two-sided time in seconds)."""
    if day.time.size == 0:
        return 0.0, 0.0
    # Each book lasts until the next message (the last one until the session's end); books that
    # share a time stamp last no time, so a sweep's intermediate books weigh nothing.
    until = np.append(day.time[1:], max(day.end_s, day.time[-1]))
    duration = until - day.time
    quoted = (day.ask != EMPTY_ASK_PRICE) & (day.bid != EMPTY_BID_PRICE)
    spread = (day.ask - day.bid) / tick_units
    return float(np.sum(spread[quoted] * duration[quoted])), float(np.sum(duration[quoted]))


def lobster_moments(days: list[LobsterDay], tick_size: float) -> dict[str, float]:
    """The moments of :data:`MOMENTS`, pooled over ``days``. ``tick_size`` is in dollars (the
    spread is reported in ticks). A moment the data cannot give (no trades, no two-sided book
    at two grid points) is NaN."""
    if not days:
        raise ValueError("no LOBSTER data to compute moments from")
    if not tick_size > 0:
        raise ValueError(f"tick_size must be positive, not {tick_size!r}")
    tick_units = tick_size * PRICE_UNIT
    seconds = sum(d.end_s - d.start_s for d in days)
    new_sizes = np.concatenate([d.size[d.kind == NEW] for d in days])
    trades = np.concatenate([_marketable_orders(d) for d in days])
    cancels = sum(int(np.sum((d.kind == PARTIAL_CANCEL) | (d.kind == DELETE))) for d in days)
    volume = sum(
        int(np.sum(d.size[(d.kind == EXECUTE) | (d.kind == EXECUTE_HIDDEN)])) for d in days
    )
    spread_area, quoted_s = map(sum, zip(*(_spread_time(d, tick_units) for d in days), strict=True))
    nan = math.nan

    def rms(step_s: float) -> float:
        r = np.concatenate([_mid_returns(d, step_s) for d in days])
        return float(np.sqrt(np.mean(r * r))) if r.size else nan

    return {
        "submissions_per_s": new_sizes.size / seconds,
        "trades_per_s": trades.size / seconds,
        "volume_per_s": volume / seconds,
        "mean_log_order_size": float(np.mean(np.log(new_sizes))) if new_sizes.size else nan,
        "mean_log_trade_size": float(np.mean(np.log(trades))) if trades.size else nan,
        "cancel_ratio": cancels / new_sizes.size if new_sizes.size else nan,
        "mean_spread_ticks": spread_area / quoted_s if quoted_s > 0 else nan,
        "return_rms_1m": rms(60.0),
        "return_rms_10s": rms(10.0),
    }


def directory_moments(directory: str | Path, tick_size: float) -> dict[str, float]:
    """:func:`lobster_moments` of every LOBSTER pair in ``directory`` (or below it)."""
    days = [read_lobster_day(m, b) for m, b in find_lobster_pairs(directory)]
    return lobster_moments(days, tick_size)
