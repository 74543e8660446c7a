"""One transaction of the recorder: a batch of a symbol's stream entries recorded together with the
instrument's cursor (`record_entries`), and what it forgets in Redis once committed."""

from __future__ import annotations

import logging
import time
from collections import deque
from decimal import Decimal

import flashbook_engine
import redis
from django.db import transaction

from exchange.models import (
    Instrument,
    RecorderCursor,
)
from exchange.orders import journal
from exchange.recorder import funds
from exchange.recorder.projection import RecordResult, StreamEntry, _Projection

logger = logging.getLogger("flashbook.recorder")

ZERO = Decimal(0)
# How long a recorded order's client order id stays in the journal's index after the commit. The
# gateway looks a client order id up in the database, then in the index (in the append script):
# an index entry dropped between the two would let a retry through, so it outlives any request by
# far; after it, the database answers.
COID_GRACE_S = 60.0
# What the events change of a recorded order (its exchange id is set when its row is written).


def cursor_position(instrument: Instrument) -> int:
    """The last sequence number of the instrument's stream the database reflects."""
    value = (
        RecorderCursor.objects.filter(instrument=instrument)
        .values_list("last_seq", flat=True)
        .first()
    )
    return value or 0


def record_entries(
    instrument: Instrument, entries: list[StreamEntry], *, max_events: int = 20_000
) -> RecordResult:
    """Applies entries of one symbol's stream (in stream order) in one transaction. Returns the
    ids that may be acknowledged — applied now or already applied — which are always the first
    entries of `entries`: it stops at a gap, and after `max_events` events (the transaction holds
    the database's write lock; a recorder catching up should not keep the gateway waiting)."""
    result = RecordResult()
    if not entries:
        return result
    # Without the write lock first: a redelivery, or a gap, needs no transaction.
    seen = cursor_position(instrument)
    if entries[-1].last <= seen:
        result.done = [entry.entry_id for entry in entries]
        result.duplicates = len(entries)
        _forget_duplicates(entries)
        return result
    if entries[0].first > seen + 1:
        result.blocked = True
        return result
    with transaction.atomic():
        cursor = RecorderCursor.objects.select_for_update().filter(instrument=instrument).first()
        if cursor is None:
            cursor = RecorderCursor.objects.create(instrument=instrument)
        last = cursor.last_seq
        batches = []
        duplicates = []
        for entry in entries:
            if entry.last <= last:
                result.done.append(entry.entry_id)
                result.duplicates += 1
                duplicates.append(entry)
                continue
            if entry.first > last + 1:
                result.blocked = True  # an earlier entry is still with another recorder
                break
            events = flashbook_engine.decode_events(entry.lines)
            if entry.first <= last:
                events = [event for event in events if event.seq > last]
            batches.append((events, entry.written_at))
            last = entry.last
            result.done.append(entry.entry_id)
            result.entries += 1
            result.events += len(events)
            if result.events >= max_events:
                break
        if batches:
            projection = _Projection(instrument)
            recorded_events = [event for events, _ in batches for event in events]
            projection.load(recorded_events)
            cash_before = {pk: account.cash for pk, account in projection.accounts.items()}
            for events, written_at in batches:
                result.trades += projection.apply(events, written_at)
            projection.save()
            cursor.last_seq = last
            cursor.save(update_fields=["last_seq", "updated_at"])
            # Buying power follows the committed rows (`exchange.orders.funds`), never ahead.
            effects = funds.batch_effects(
                instrument,
                recorded_events,
                cash_before,
                {pk: account.cash for pk, account in projection.accounts.items()},
            )
            symbol, seq = instrument.symbol, last
            transaction.on_commit(lambda: funds.apply_after_commit(symbol, seq, effects))
            if projection.recorded:
                recorded = projection.recorded
                transaction.on_commit(lambda: _forget_records(recorded))
        if duplicates:
            transaction.on_commit(lambda: _forget_duplicates(duplicates))
    return result


# Records whose client order ids leave the journal's index once `COID_GRACE_S` has passed:
# (when, records), oldest first.
_coid_queue: deque[tuple[float, list[journal.PendingRecord]]] = deque()


def _forget_records(records: list[journal.PendingRecord]) -> None:
    """After the commit that wrote their rows: the journal's records of these orders go (readers
    find the rows now); their client order ids a while later (`COID_GRACE_S`)."""
    try:
        journal.forget_pending(records)
    except redis.RedisError:  # left behind: harmless (a reader prefers the row)
        logger.warning("recorder could not clear %d order records", len(records))
    _coid_queue.append((time.monotonic() + COID_GRACE_S, records))
    forget_due_client_order_ids()


def forget_due_client_order_ids(*, now: float | None = None) -> None:
    now = time.monotonic() if now is None else now
    due = []
    while _coid_queue and _coid_queue[0][0] <= now:
        due += _coid_queue.popleft()[1]
    if due:
        try:
            journal.forget_client_order_ids(due)
        except redis.RedisError:  # left behind: harmless (the order exists: a retry finds it)
            logger.warning("recorder could not clear %d client order ids", len(due))


def _forget_duplicates(entries: list[StreamEntry]) -> None:
    """Entries recorded already (a redelivery): a recorder that died between its commit and
    dropping the records left them behind; drop them now."""
    wanted: dict[int, list[int]] = {}
    for entry in entries:
        for event in flashbook_engine.decode_events(entry.lines):
            if event.kind in ("accepted", "rejected") and event.order_id:
                wanted.setdefault(event.account, []).append(event.order_id)
    if wanted:
        try:
            records = list(journal.pending_by_account(wanted).values())
            journal.forget_pending(records)
        except redis.RedisError:
            return
        _coid_queue.append((time.monotonic() + COID_GRACE_S, records))
