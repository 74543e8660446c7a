"""The recorder: the one writer of executions. It projects every symbol's event stream into the
database — orders, fills, trades, positions, cash and realized P&L.

It reads the streams through a consumer group, so several recorders can share the work, and it is
idempotent: each instrument's `RecorderCursor` says up to which sequence number the database
reflects its stream, and it is moved in the same transaction as the writes it covers. An entry at
or below the cursor is a duplicate (acknowledged, not re-applied); an entry beyond the cursor + 1
waits until the one before it has been recorded (another recorder holds it, or held it and died:
then its entries are claimed with XCLAIM once they have been idle long enough). Entries are
acknowledged only after the commit, so a crash loses nothing: the entry is read again.

Every computation rounds the same way event by event (to the 8 places the database stores), so the
database does not depend on how the stream was cut into batches: a recorder killed and restarted
ends where an unbroken one does. Times of trades and fills are the time the engine wrote the event
entry (its stream id), not the time of recording, for the same reason.

What each event does (see `docs/protocol.md`):

* accepted — the order becomes NEW and gets its exchange id. The gateway's order is found by the
  journal's `ref` (its primary key); a NEW written to the journal by another tool (no `ref`) of a
  known account gets an order row here, client order id `engine-{SYMBOL}-{order_id}`.
* rejected NEW — the gateway's order becomes REJECTED with the reason: found by `ref` (for
  MALFORMED even when the account was unreadable), else, when the entry was too broken to carry a
  readable `ref`, by the exchange id the gateway stored on its PENDING order. DUPLICATE_ORDER_ID
  never touches the order that owns the id. Rejected cancels and replaces change nothing.
* trade — a `Trade` row always; for each side whose account exists: a `Fill` with its fee, the
  order's filled quantity, average price and status, the position (quantity, exact cost basis,
  realized P&L) and cash (the buyer pays price * quantity, the seller receives it, each pays its
  fee at the rate the engine stamped on the trade; `money.settle_fill`). A self-trade (maker and
  taker of one account) is a wash: fills and order progress, fees, but no position or cash move.
* cancelled — CANCELED (USER, SELF_TRADE, RESET) or EXPIRED (REMAINDER, FOK_UNFILLABLE,
  PRICE_BAND).
* replaced — new price; quantity = filled + the new remaining quantity.
* status — HALTED / RESUMED set `Instrument.halted`; RESET zeroes the instrument's positions, as
  the engine does (cash and realized P&L stay).

Speed: rows are read with `values_list` and orders, trades, fills, positions and cash written by
`bulk_sql` — on PostgreSQL one statement per table and batch (the ORM's bulk operations cost
several times the database's own work); one
transaction covers up to `batch` stream entries of a symbol and at most `max_events` events, so a
recorder catching up does not hold SQLite's write lock for long. On SQLite, decimal columns keep
15 significant digits (Django stores them as REAL): amounts below 10^7 with 8 places are exact.

(The modules: `money` the arithmetic, `projection` one transaction's rows and how each event
changes them, `transaction` a batch recorded with its cursor, `consumer` the consumer-group loop,
`bulk_sql` the statements.)
"""

from exchange.recorder.consumer import GROUP, Recorder, RecorderStats
from exchange.recorder.projection import RecordResult, StreamEntry
from exchange.recorder.transaction import (
    COID_GRACE_S,
    cursor_position,
    forget_due_client_order_ids,
    record_entries,
)

__all__ = [
    "COID_GRACE_S",
    "GROUP",
    "RecordResult",
    "Recorder",
    "RecorderStats",
    "StreamEntry",
    "cursor_position",
    "forget_due_client_order_ids",
    "record_entries",
]
