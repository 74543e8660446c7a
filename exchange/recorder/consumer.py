"""The recorder's loop: the symbols' event streams read through a consumer group (several recorders
share the work), entries recorded in order per symbol, abandoned ones claimed."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field

import redis
from django.db import InterfaceError, OperationalError, connection

from exchange import redis_clients
from exchange.listing import ListingWatch
from exchange.models import (
    Instrument,
    RecorderCursor,
)
from exchange.orders import journal
from exchange.protocol import keys
from exchange.recorder.projection import StreamEntry
from exchange.recorder.transaction import forget_due_client_order_ids, record_entries

logger = logging.getLogger("flashbook.recorder")

GROUP = "recorders"
_CLAIM_PAGE = 1000  # pending entries looked at per XPENDING


@dataclass
class RecorderStats:
    entries: int = 0
    events: int = 0
    trades: int = 0
    duplicates: int = 0
    claimed: int = 0
    started: float = field(default_factory=time.monotonic)


def _parse(entry_id: bytes, fields: dict) -> StreamEntry | None:
    if not fields:
        return None  # deleted from the stream after it was delivered
    return StreamEntry(
        entry_id=entry_id.decode(),
        first=int(fields[b"first"]),
        last=int(fields[b"last"]),
        lines=fields.get(b"e", b"").decode(),
    )


# A cluster's failover shows as these too (the client retries nothing: `redis_clients`).
_TRANSIENT = (
    redis.ConnectionError,
    redis.TimeoutError,
    OperationalError,
    InterfaceError,
    *redis_clients.FAILOVER_ERRORS,
)
CLUSTER_POLL_S = 0.05  # on a cluster, the wait between reads that brought nothing


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Recorder:
    """Consumes the event streams of `symbols` (default: every instrument, taken on within about
    a second of its listing: `exchange.listing`) as one consumer of the shared group. Disabled
    instruments too: the events that close one (the cancels of its resting orders) come after
    it was disabled."""

    def __init__(
        self,
        symbols: list[str] | None = None,
        *,
        consumer: str | None = None,
        batch: int = 50,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        progress_every: float = 5.0,
        max_events: int = 20_000,
        min_interval_ms: int = 0,
    ):
        self.fixed_symbols = list(symbols) if symbols else None
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.progress_every = progress_every
        self.max_events = max_events
        self.min_interval = min_interval_ms / 1000
        self._last_progress = 0.0
        self.redis = journal.client()
        self.cluster = redis_clients.is_cluster()
        self.instruments: dict[str, Instrument] = {}
        self.keys: dict[str, str] = {}  # stream key -> symbol
        self.blocked: set[str] = set()  # streams waiting for an earlier entry
        self.stopping = False
        self.stats = RecorderStats()
        self._logged = (time.monotonic(), 0, 0)
        self._next_claim = 0.0
        self.listing = ListingWatch()
        self._groups_ready = False
        self._backlog = False  # the last read filled a batch: more is waiting
        self._load_instruments()

    def stop(self) -> None:
        """Asks the loop to stop after the current transaction."""
        self.stopping = True

    def _load_instruments(self) -> None:
        if self.fixed_symbols is not None:
            query = Instrument.objects.filter(symbol__in=self.fixed_symbols)
        else:
            query = Instrument.objects.all()
        instruments = {instrument.symbol: instrument for instrument in query}
        if self.fixed_symbols is not None:
            missing = set(self.fixed_symbols) - set(instruments)
            if missing:
                raise ValueError(f"unknown symbols: {', '.join(sorted(missing))}")
        added = set(instruments) - set(self.instruments)
        first_load = not self.instruments
        self.instruments = instruments
        self.keys = {keys.key("evt", symbol): symbol for symbol in instruments}
        for symbol in added:
            RecorderCursor.objects.get_or_create(instrument=instruments[symbol])
        if added:
            self._groups_ready = False
            if not first_load:
                logger.info("recorder symbols added=%s", ",".join(sorted(added)))

    def ensure_groups(self) -> None:
        for key in self.keys:
            try:
                self.redis.xgroup_create(key, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    def run(self, *, until_idle: bool = False) -> RecorderStats:
        """Records until `stop()` (or, with `until_idle`, until every stream is recorded and no
        recorder of the group holds an unacknowledged entry). Transient Redis and database errors
        are logged and retried."""
        logger.info(
            "recorder start consumer=%s group=%s symbols=%s batch=%d",
            self.consumer,
            GROUP,
            ",".join(sorted(self.instruments)) or "-",
            self.batch,
        )
        backoff = 0.1
        while not self.stopping:
            try:
                if self._step(until_idle):
                    break
                backoff = 0.1
            except _TRANSIENT as exc:
                logger.warning("recorder retry error=%r backoff_s=%.1f", exc, backoff)
                connection.close()
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                logger.warning("recorder group missing, recreating error=%r", exc)
                self._groups_ready = False
            self._log_progress()
        self._log_progress(force=True)
        self._leave_group()
        logger.info(
            "recorder stop consumer=%s entries=%d events=%d trades=%d",
            self.consumer,
            self.stats.entries,
            self.stats.events,
            self.stats.trades,
        )
        return self.stats

    def _step(self, until_idle: bool) -> bool:
        """One pass; returns True when `until_idle` is satisfied."""
        now = time.monotonic()
        if self.fixed_symbols is None and self.listing.due(now):
            if self.listing.moved(self.redis.get(keys.instruments_version_key())):
                self._load_instruments()
        if not self.keys:  # no instrument enabled yet
            time.sleep(self.block_ms / 1000)
            return until_idle
        if not self._groups_ready:
            self.ensure_groups()
        forget_due_client_order_ids(now=now)
        if now >= self._next_claim:
            self._claim_abandoned()
            self._next_claim = now + max(0.1, min(5.0, self.claim_idle_ms / 2000))
        # Under load, entries arrive faster than transactions commit: waiting a moment after a
        # transaction lets the next one take many more of them, for much the same cost. Not when
        # the last read was a full batch: the entries are there already, and a recorder behind
        # catches up at once (it lagged seconds behind the agents runner under
        # `make bench-agents` while it waited).
        pause = self._last_progress + self.min_interval - now
        if pause > 0 and not self._backlog:
            time.sleep(pause)
        self._backlog = False
        # Our own unacknowledged entries first: after a restart, a claim, or a gap we waited on.
        self.blocked.clear()
        progressed = self._consume(list(self.keys), "0", None)
        if self.stopping:
            return False
        open_keys = [key for key in self.keys if key not in self.blocked]
        if open_keys:
            waiting = bool(self.blocked) or progressed
            block = None if waiting else (min(self.block_ms, 200) if until_idle else self.block_ms)
            progressed |= self._consume(open_keys, ">", block)
        if progressed:
            self._last_progress = time.monotonic()
        else:
            if self.blocked:
                time.sleep(0.02)  # another recorder is committing the entry before ours
            elif until_idle and self._group_idle():
                return True
        return False

    def _read(self, keys: list[str], start: str, block: int | None) -> list:
        """XREADGROUP of the streams: one command on one server. On a cluster the streams of
        different symbols are in different slots, which no command spans: one read per slot,
        none blocking (a blocked read would hold the others back); when none brings anything,
        the pass waits `CLUSTER_POLL_S` instead (at most that much later to see a new entry)."""
        if not self.cluster:
            reply = self.redis.xreadgroup(
                GROUP, self.consumer, dict.fromkeys(keys, start), count=self.batch, block=block
            )
            return reply or []
        replies = []
        for group in redis_clients.by_slot(keys).values():
            reply = self.redis.xreadgroup(
                GROUP, self.consumer, dict.fromkeys(group, start), count=self.batch
            )
            replies += reply or []
        if block is not None and not any(entries for _, entries in replies):
            time.sleep(min(block / 1000, CLUSTER_POLL_S))
        return replies

    def _consume(self, keys: list[str], start: str, block: int | None) -> bool:
        if not keys:
            return False
        reply = self._read(keys, start, block)
        progressed = False
        for key, raw_entries in reply:
            key = _text(key)
            if len(raw_entries) >= self.batch:
                self._backlog = True
            entries, gone = [], []
            for entry_id, fields in raw_entries:
                entry = _parse(entry_id, fields)
                if entry is None:
                    gone.append(entry_id)
                else:
                    entries.append(entry)
            if gone:
                logger.error(
                    "recorder entries deleted before recording stream=%s ids=%s",
                    key,
                    ",".join(_text(i) for i in gone),
                )
                self.redis.xack(key, GROUP, *gone)
            instrument = self.instruments[self.keys[key]]
            # Everything read is recorded, even when asked to stop meanwhile: entries left
            # unacknowledged would wait `claim_idle_ms` for the next recorder to claim them.
            while entries:
                result = record_entries(instrument, entries, max_events=self.max_events)
                if result.done:
                    self.redis.xack(key, GROUP, *result.done)
                    progressed = True
                self.stats.entries += result.entries
                self.stats.events += result.events
                self.stats.trades += result.trades
                self.stats.duplicates += result.duplicates
                if result.blocked or not result.done:
                    self.blocked.add(key)
                    break
                entries = entries[len(result.done) :]
        return progressed

    def _leave_group(self) -> None:
        """Removes this consumer from the group unless it still holds entries (then the next
        recorder claims them)."""
        try:
            for key in self.keys:
                pending = self.redis.xpending_range(
                    key, GROUP, "-", "+", 1, consumername=self.consumer
                )
                if not pending:
                    self.redis.xgroup_delconsumer(key, GROUP, self.consumer)
        except redis.RedisError as exc:
            logger.warning("recorder could not leave the group error=%r", exc)

    def _group_idle(self) -> bool:
        """Nothing left: no entry of any stream is delivered but unacknowledged."""
        return all(self.redis.xpending(key, GROUP)["pending"] == 0 for key in self.keys)

    def _claim_abandoned(self) -> None:
        """Takes over entries another recorder read but has not acknowledged for
        `claim_idle_ms` (it died, or hangs). Its own are left alone: an entry of ours that waited
        that long (for the entry before it, on a slow machine) is not abandoned, and counting it
        would report a take-over that never happened."""
        for key in self.keys:
            start = "-"
            while True:
                page = self.redis.xpending_range(
                    key, GROUP, start, "+", _CLAIM_PAGE, idle=self.claim_idle_ms
                )
                theirs = [p["message_id"] for p in page if _text(p["consumer"]) != self.consumer]
                if theirs:
                    # XCLAIM checks the idle time again: an entry its owner has just read or
                    # acknowledged stays where it is.
                    claimed = self.redis.xclaim(
                        key, GROUP, self.consumer, self.claim_idle_ms, theirs, justid=True
                    )
                    if claimed:
                        self.stats.claimed += len(claimed)
                        logger.info(
                            "recorder claimed stream=%s entries=%d first=%s",
                            key,
                            len(claimed),
                            _text(claimed[0]),
                        )
                if len(page) < _CLAIM_PAGE:
                    break
                start = "(" + _text(page[-1]["message_id"])

    def _log_progress(self, force: bool = False) -> None:
        now = time.monotonic()
        since, entries, events = self._logged
        elapsed = now - since
        if not force and elapsed < self.progress_every:
            return
        stats = self.stats
        if stats.entries != entries or force:
            logger.info(
                "recorder progress entries=%d events=%d trades=%d duplicates=%d claimed=%d "
                "entries_per_s=%.1f events_per_s=%.1f",
                stats.entries,
                stats.events,
                stats.trades,
                stats.duplicates,
                stats.claimed,
                (stats.entries - entries) / elapsed if elapsed > 0 else 0.0,
                (stats.events - events) / elapsed if elapsed > 0 else 0.0,
            )
        self._logged = (now, stats.entries, stats.events)
