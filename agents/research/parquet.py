"""Parquet copies of the large tables (pyarrow), made from the CSVs once the run is over.

Converting after the run keeps the simulator's loop as it is (one text writer per file) and makes
the Parquet file hold exactly what the CSV holds — the tests read both back and compare them.
The conversion streams: the CSV is read in fixed-size blocks, one thread, each block one row
group, so a full day's order book never sits in memory whole and the file's bytes depend only on
the CSV's bytes (and the pyarrow version, which the manifest records).

Columns (the LOBSTER names of ``/work/shared/LOBSTER.md``):

* messages: ``time_ns`` (int64, nanoseconds after midnight, exact), ``time`` (float64 seconds, as
  LOBSTER's readers load it), ``type``, ``order_id``, ``size``, ``price``, ``direction``;
* orderbook: ``ask_price_1, ask_size_1, bid_price_1, bid_size_1, ...`` (int64; empty levels keep
  LOBSTER's ±9999999999 fillers);
* trades: the CSV's header, with ``time`` split into ``time_ns`` and ``time`` as above.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["MESSAGE_COLUMNS", "TRADE_COLUMNS", "csv_to_parquet", "orderbook_columns"]

MESSAGE_COLUMNS = ("time", "type", "order_id", "size", "price", "direction")
TRADE_COLUMNS = (
    "time", "price", "size", "aggressor", "maker_order_id", "taker_order_id", "maker", "taker",
)  # fmt: skip
_BLOCK_BYTES = 32 << 20
_NS_PER_S = 1e9


def orderbook_columns(levels: int) -> list[str]:
    return [
        f"{name}_{level}"
        for level in range(1, levels + 1)
        for name in ("ask_price", "ask_size", "bid_price", "bid_size")
    ]


def _schema(kind: str, levels: int) -> tuple[list[str], dict[str, pa.DataType], bool]:
    """Column names, their types as read from the CSV, and whether the CSV has a header."""
    if kind == "messages":
        types = {"time": pa.string(), "type": pa.int8(), "direction": pa.int8()}
        types |= {c: pa.int64() for c in ("order_id", "size", "price")}
        return list(MESSAGE_COLUMNS), types, False
    if kind == "orderbook":
        names = orderbook_columns(levels)
        return names, dict.fromkeys(names, pa.int64()), False
    if kind == "trades":
        types = {c: pa.int64() for c in ("price", "size", "maker_order_id", "taker_order_id")}
        types |= {c: pa.string() for c in ("time", "aggressor", "maker", "taker")}
        return list(TRADE_COLUMNS), types, True
    raise ValueError(f"no Parquet layout for {kind!r}")


def _split_time(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``"34200.012345678"`` → ``time_ns`` 34200012345678 and ``time`` 34200.012345678 (the
    correctly rounded double of the same number, as ``float()`` of the text gives)."""
    text = batch.column("time")
    time_ns = pc.cast(pc.replace_substring(text, ".", ""), pa.int64())
    seconds = pc.divide(pc.cast(time_ns, pa.float64()), _NS_PER_S)
    columns = [time_ns, seconds] + [batch.column(i) for i in range(1, batch.num_columns)]
    names = ["time_ns", "time", *batch.schema.names[1:]]
    return pa.RecordBatch.from_arrays(columns, names=names)


def csv_to_parquet(csv_path: Path, parquet_path: Path, kind: str, *, levels: int = 0) -> int:
    """Writes ``parquet_path`` from ``csv_path`` (``kind``: messages, orderbook or trades);
    returns the number of rows."""
    names, types, header = _schema(kind, levels)
    read = pacsv.ReadOptions(
        column_names=None if header else names,
        use_threads=False,
        block_size=_BLOCK_BYTES,
    )
    convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=False)
    rows = 0
    writer = None
    with pacsv.open_csv(csv_path, read_options=read, convert_options=convert) as reader:
        for batch in reader:
            if "time" in batch.schema.names:
                batch = _split_time(batch)
            if writer is None:
                writer = pq.ParquetWriter(parquet_path, batch.schema, compression="zstd")
            writer.write_batch(batch)
            rows += batch.num_rows
        if writer is None:  # an empty CSV: an empty table of the same columns
            schema = reader.schema
            if "time" in schema.names:
                empty = _split_time(pa.RecordBatch.from_pylist([], schema=schema))
                schema = empty.schema
            writer = pq.ParquetWriter(parquet_path, schema, compression="zstd")
    writer.close()
    return rows
