"""Reads for operators: how far each process of the pipeline is behind, and whether what the web
processes depend on answers. Used by `manage.py exchange_status` and `/readyz`; writes nothing.

Per symbol (`docs/protocol.md`):

* the journal `{prefix}:cmd:{SYM}`: its length and its last id;
* the engine: the status hash's `jid` (last applied journal id) and `seq`; its lag is what the
  journal holds after `jid` — counted up to `LAG_COUNT_LIMIT` entries — and the age of the oldest
  of those entries (Redis's clock against the stream id's milliseconds);
* the recorder: the database's cursor (`RecorderCursor.last_seq`) against the last sequence
  number in the event stream, and the consumer group's pending entries and consumers;
* events/s: the sequence numbers written over the last `window_s` seconds, from two reads of the
  event stream (its last entry and the last entry before the window), never a scan of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from exchange import redis_clients, selectors
from exchange.orders import journal
from exchange.protocol import keys
from exchange.recorder import GROUP

LAG_COUNT_LIMIT = 10_000
EVENTS_WINDOW_S = 10.0


@dataclass(frozen=True, slots=True)
class SymbolStatus:
    symbol: str
    journal_length: int
    journal_last_id: str
    engine_seen: bool  # the engine wrote the status hash at least once
    engine_jid: str
    engine_seq: int
    engine_lag: int  # journal entries after `engine_jid`, at most LAG_COUNT_LIMIT
    engine_lag_capped: bool
    engine_lag_ms: int  # age of the oldest entry the engine has not applied (0: none)
    engine_halted: bool
    engine_orders: int  # resting orders
    engine_updated_ms: int  # when the engine last wrote the hash (it writes on activity only)
    events_last_seq: int
    events_per_s: float
    recorded_seq: int
    recorder_lag: int  # events in the stream the database does not reflect yet
    recorder_pending: int  # entries read by a recorder and not yet acknowledged
    recorder_consumers: int

    def as_dict(self) -> dict:
        return asdict(self)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])


def _last_seq(entries) -> int:
    """The `last` field of the newest of `entries` (XREVRANGE ... COUNT 1), 0 without one."""
    if not entries:
        return 0
    return int(entries[0][1].get(b"last", 0))


def _journal_tail(client: redis.Redis, symbol: str, after: str, now_ms: int):
    """(entries after `after`, capped, whether capped, age in ms of the first of them)."""
    start = f"({after}" if after not in ("", "0-0") else "-"
    key = keys.key("cmd", symbol)
    entries = client.xrange(key, min=start, count=LAG_COUNT_LIMIT)
    if not entries:
        return 0, False, 0
    capped = len(entries) == LAG_COUNT_LIMIT and bool(
        client.xrange(key, min=f"({_text(entries[-1][0])}", count=1)
    )
    return len(entries), capped, max(0, now_ms - _id_ms(_text(entries[0][0])))


def _group(client: redis.Redis, key: str) -> dict:
    try:
        groups = client.xinfo_groups(key)
    except redis.ResponseError:  # no such stream yet
        return {}
    for group in groups:
        if _text(group.get("name")) == GROUP:
            return group
    return {}


def symbol_status(
    symbol: str, *, client: redis.Redis | None = None, window_s: float = EVENTS_WINDOW_S
) -> SymbolStatus:
    client = client or journal.client()
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000
    cmd_key, evt_key = keys.key("cmd", symbol), keys.key("evt", symbol)

    journal_length = client.xlen(cmd_key)
    newest_command = client.xrevrange(cmd_key, count=1)
    journal_last_id = _text(newest_command[0][0]) if newest_command else "0-0"

    status = {_text(k): _text(v) for k, v in client.hgetall(keys.key("status", symbol)).items()}
    engine_jid = status.get("jid", "0-0")
    lag, capped, lag_ms = _journal_tail(client, symbol, engine_jid, now_ms)

    last_seq = _last_seq(client.xrevrange(evt_key, count=1))
    window_start = max(0, now_ms - int(window_s * 1000))
    before_window = _last_seq(client.xrevrange(evt_key, max=f"({window_start}", count=1))
    recorded = selectors.recorded_seq(symbol)
    group = _group(client, evt_key)

    return SymbolStatus(
        symbol=symbol,
        journal_length=journal_length,
        journal_last_id=journal_last_id,
        engine_seen=bool(status),
        engine_jid=engine_jid,
        engine_seq=int(status.get("seq", 0)),
        engine_lag=lag,
        engine_lag_capped=capped,
        engine_lag_ms=lag_ms,
        engine_halted=status.get("halted") == "1",
        engine_orders=int(status.get("orders", 0)),
        engine_updated_ms=int(status.get("ts_ms", 0)),
        events_last_seq=last_seq,
        events_per_s=round((last_seq - before_window) / window_s, 1),
        recorded_seq=recorded,
        recorder_lag=max(0, last_seq - recorded),
        recorder_pending=int(group.get("pending", 0) or 0),
        recorder_consumers=int(group.get("consumers", 0) or 0),
    )


def consumer_idle_ms(name: str, symbols: list[str] | None = None) -> int | None:
    """Milliseconds since the recorder consumer `name` last read any of the symbols' event
    streams (a blocked read counts: a live recorder reads at least once a second), or None when
    the group has no such consumer. A recorder's liveness, for its container's health check."""
    symbols = symbols if symbols is not None else selectors.instrument_symbols_enabled()
    client = journal.client()
    idle = []
    for symbol in symbols:
        try:
            consumers = client.xinfo_consumers(keys.key("evt", symbol), GROUP)
        except redis.ResponseError:  # no stream or no group yet
            continue
        idle += [int(c["idle"]) for c in consumers if _text(c.get("name")) == name]
    return min(idle) if idle else None


def exchange_status(
    symbols: list[str] | None = None, *, window_s: float = EVENTS_WINDOW_S
) -> list[SymbolStatus]:
    """Every enabled instrument's status (or the given symbols'), in symbol order."""
    symbols = sorted(symbols if symbols is not None else selectors.instrument_symbols_enabled())
    client = journal.client()
    return [symbol_status(symbol, client=client, window_s=window_s) for symbol in symbols]


# ----- readiness -------------------------------------------------------------------------------


def _database_check() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return f"error: {exc.__class__.__name__}"
    return "ok"


@cache
def _probe_client(url: str) -> redis.Redis:
    # Short timeouts: a probe must answer "not ready" before the orchestrator gives up on it.
    return redis_clients.client(url, socket_timeout=2, socket_connect_timeout=2)


def readiness() -> dict:
    """Whether this process can serve: the database and Redis answer. Which enabled instruments
    an engine has taken on (its status hash exists) is reported too, but does not decide: an
    instrument just enabled is starting (its orders are refused with `instrument_not_served`
    for that moment), and that is no reason to take the web processes out of service."""
    checks: dict[str, object] = {"database": _database_check()}
    client = _probe_client(settings.REDIS_URL)
    try:
        client.ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    engines: dict[str, str] = {}
    if checks["database"] == "ok" and checks["redis"] == "ok":
        symbols = selectors.instrument_symbols_enabled()
        try:
            pipe = client.pipeline(transaction=False)
            for symbol in symbols:
                pipe.exists(keys.key("status", symbol))
            served = pipe.execute()
        except redis.RedisError as exc:
            served = []
            checks["redis"] = f"error: {exc.__class__.__name__}"
        for symbol, present in zip(symbols, served, strict=False):
            engines[symbol] = "ok" if present else "starting: no engine has taken it on yet"
    checks["engines"] = engines
    ready = checks["database"] == "ok" and checks["redis"] == "ok"
    return {"ready": ready, "checks": checks}
