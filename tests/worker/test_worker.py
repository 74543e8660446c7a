"""The engine worker (`manage.py run_engine`) against a real Redis, as a real subprocess.

What the worker must guarantee (issue 3, docs/protocol.md): every journal entry has exactly one
outcome; the event stream's sequence numbers are gap-free and never repeat; after any crash —
including one in the middle of writing a snapshot, or with no usable snapshot left — the book and
the events are exactly those of an uninterrupted run. "Exactly" is checked against an in-process
replay of the same journal through the same engine (`OrderBook.apply_entry`): equal event lists,
every field of every event, and equal `state_hash()`.
"""

from __future__ import annotations

import functools
import json
import random
import signal
import time

import pytest
import redis
from flashbook_engine import Command, OrderBook, command_fields, decode_events


def key(prefix: str, kind: str, symbol: str) -> str:
    """A key of the wire protocol (docs/protocol.md): ``{prefix}:{kind}:{SYM}``."""
    return f"{prefix}:{kind}:{{{symbol}}}"


# --- the journal --------------------------------------------------------------------------------


def _bulk(value: str | bytes) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    return b"$%d\r\n%s\r\n" % (len(value), value)


def xadd_all(r: redis.Redis, stream: str, entries, chunk: int = 5000) -> list[str]:
    """Appends journal entries (lists of (field, value) pairs) with XADD, pipelined `chunk` at a
    time as raw RESP (several times faster than building redis-py pipelines); returns their ids."""
    head = b"$4\r\nXADD\r\n" + _bulk(stream) + b"$1\r\n*\r\n"
    ids: list[str] = []
    conn = r.connection_pool.get_connection()
    try:
        for start in range(0, len(entries), chunk):
            part = entries[start : start + chunk]
            payload = b"".join(
                b"*%d\r\n%s%s"
                % (3 + 2 * len(fields), head, b"".join(_bulk(k) + _bulk(v) for k, v in fields))
                for fields in part
            )
            conn.send_packed_command([payload], check_health=False)
            ids.extend(conn.read_response().decode() for _ in part)
    finally:
        r.connection_pool.release(conn)
    return ids


def random_journal(seed: int, n: int) -> list[list[tuple[str, str]]]:
    """A realistic random mix: NEW limit (GTC, IOC, FOK, post-only), market and FOK market orders
    around a drifting mid, CANCEL and REPLACE of orders that may still rest (and some that do not),
    self-trade prevention and position limits now and then, a few HALT/RESUME spells, a RESET,
    and the occasional reused order id."""
    rng = random.Random(seed)
    rand, randrange = rng.random, rng.randrange
    entries: list[list[tuple[str, str]]] = []
    live: list[tuple[str, str]] = []  # (id, account) of GTC orders that may rest
    next_id, mid, resume_at = 1, 10_000, -1
    reset_at = n // 2 + randrange(n // 4)
    for i in range(n):
        x = rand()
        if i == resume_at:
            entries.append([("t", "resume")])
            resume_at = -1
        elif i == reset_at:
            entries.append([("t", "reset")])
            live.clear()
        elif x < 0.0005 and resume_at < 0:
            entries.append([("t", "halt")])
            resume_at = i + randrange(3, 40)
        elif x < 0.30 and live:
            j = randrange(len(live))
            live[j], live[-1] = live[-1], live[j]
            oid, acct = live.pop() if rand() < 0.9 else live[-1]
            if rand() < 0.02:
                acct = str(int(acct) % 40 + 1)  # someone else's order: UNKNOWN_ORDER
            entries.append([("t", "cancel"), ("id", oid), ("acct", acct)])
        elif x < 0.40 and live:
            oid, acct = live[randrange(len(live))]
            fields = [("t", "replace"), ("id", oid), ("acct", acct)]
            y = rand()
            if y < 0.6:
                fields.append(("px", str(mid + randrange(-12, 13))))
            if y > 0.4:
                fields.append(("qty", str(randrange(1, 60))))
            entries.append(fields)
        else:
            oid = next_id
            next_id += 1 if rand() < 0.9 else 3
            if rand() < 0.002:
                oid = randrange(1, next_id)  # an id already used: DUPLICATE_ORDER_ID
            acct = str(randrange(1, 41))
            side = "buy" if rand() < 0.5 else "sell"
            mid += (-1, 0, 0, 1)[randrange(4)]
            fields = [("t", "new"), ("id", str(oid)), ("acct", acct), ("side", side)]
            qty = str(randrange(1, 50))
            kind = rand()
            if kind < 0.07:
                fields += [("type", "market"), ("tif", "fok" if rand() < 0.3 else "ioc")]
                fields.append(("qty", qty))
            else:
                offset = randrange(-4, 16)
                price = mid - offset if side == "buy" else mid + offset
                tif = "gtc" if kind < 0.82 else ("ioc" if kind < 0.91 else "fok")
                fields += [("tif", tif), ("px", str(price)), ("qty", qty)]
                if tif == "gtc":
                    if rand() < 0.06:
                        fields.append(("post", "1"))
                    live.append((str(oid), acct))
            if rand() < 0.05:
                stp = ("cancel_newest", "cancel_oldest", "cancel_both")[randrange(3)]
                fields.append(("stp", stp))
            if rand() < 0.03:
                fields.append(("maxpos", str(randrange(20, 400))))
            entries.append(fields)
    return entries


@functools.cache
def crash_journals() -> dict[str, list[list[tuple[str, str]]]]:
    """200,000 commands across two symbols, built once per session."""
    return {"A": random_journal(1, 100_000), "B": random_journal(2, 100_000)}


# --- what the worker wrote, and what it should have ---------------------------------------------


def replay(entries, symbol: str) -> tuple[OrderBook, list[list]]:
    """The same journal through the same engine, in process: the book and each entry's events."""
    book = OrderBook(symbol)
    return book, [book.apply_entry(fields) for fields in entries]


def read_stream(r: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    entries, after = [], "-"
    while True:
        chunk = r.xrange(stream, min=after, count=1000)
        if not chunk:
            return entries
        entries += chunk
        after = "(" + chunk[-1][0].decode()


def stream_events(r: redis.Redis, prefix: str, symbol: str):
    """The event stream's events, after checking its entries chain (`first` = previous `last`
    + 1, starting at 1) and that each entry holds exactly the events `first..last`."""
    entries = read_stream(r, key(prefix, "evt", symbol))
    events, expected_first = [], 1
    for entry_id, fields in entries:
        first, last = int(fields[b"first"]), int(fields[b"last"])
        assert first == expected_first, f"entry {entry_id}: first={first}, want {expected_first}"
        batch = decode_events(fields[b"e"])
        assert [e.seq for e in batch] == list(range(first, last + 1)), f"entry {entry_id}"
        events += batch
        expected_first = last + 1
    return entries, events


def assert_same_events(actual: list, expected: list) -> None:
    """Equal lists of events, every field of every event; reports the first difference only."""
    for index, (got, want) in enumerate(zip(actual, expected, strict=False)):
        assert got == want, f"event #{index + 1} differs: got {got!r}, want {want!r}"
    assert len(actual) == len(expected), f"{len(actual)} events, want {len(expected)}"


def check_symbol(r, prefix, symbol, entries, journal_ids, status=None, stopped=False):
    """Everything the worker wrote for `symbol` equals an uninterrupted in-process replay."""
    book, per_entry = replay(entries, symbol)
    expected = [event for produced in per_entry for event in produced]
    stream, events = stream_events(r, prefix, symbol)
    # Gap-free, no duplicate, and the very events of the replay, every field of every event.
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert_same_events(events, expected)
    # Each stream entry names the journal id of the last command it covers.
    position = {jid: i for i, jid in enumerate(journal_ids)}
    jids = [position[fields[b"jid"].decode()] for _, fields in stream]
    assert jids == sorted(set(jids)) and jids[-1] == len(journal_ids) - 1
    # Every NEW has exactly one outcome, accepted or rejected, and it comes first.
    # (The stream's own count: accepted + rejected NEWs, malformed entries of any kind aside.)
    news = malformed_news = 0
    for fields, produced in zip(entries, per_entry, strict=True):
        if dict(fields).get("t") == "new":
            news += 1
            outcomes = [e for e in produced if e.kind in ("accepted", "rejected")]
            assert len(outcomes) == 1 and produced[0] is outcomes[0], (fields, produced)
            malformed_news += outcomes[0].reason == "MALFORMED"
    outcomes = [
        e
        for e in events
        if e.kind == "accepted"
        or (e.kind == "rejected" and e.command == "new" and e.reason != "MALFORMED")
    ]
    assert len(outcomes) == news - malformed_news
    # The engine state: the status hash (when idle) and the snapshot (after a clean stop).
    if status is not None:
        assert status["jid"] == journal_ids[-1]
        assert int(status["seq"]) == book.seq == len(events)
        assert int(status["state_hash"]) == book.state_hash()
        assert int(status["orders"]) == book.order_count
    if stopped:
        snap = r.hgetall(key(prefix, "snap", symbol))
        assert snap[b"jid"].decode() == journal_ids[-1]
        assert int(snap[b"seq"]) == book.seq
        restored = OrderBook.restore(snap[b"data"])
        assert restored.state_hash() == book.state_hash()
        assert restored.resting_orders() == book.resting_orders()
    return book, events


def progress(r, prefix, symbol, position) -> int:
    """How many journal entries the event stream covers so far."""
    last = r.xrevrange(key(prefix, "evt", symbol), count=1)
    return position[last[0][1][b"jid"].decode()] + 1 if last else 0


def recovered_logs(worker) -> dict[str, dict]:
    return {rec["symbol"]: rec for rec in worker.logs() if rec.get("msg") == "recovered"}


def load_crash_journals(r, prefix):
    journals = crash_journals()
    ids = {s: xadd_all(r, key(prefix, "cmd", s), entries) for s, entries in journals.items()}
    positions = {s: {jid: i for i, jid in enumerate(ids[s])} for s in journals}
    return journals, ids, positions


def check_all(r, prefix, journals, ids, statuses=None, stopped=False):
    for symbol in journals:
        status = statuses[symbol] if statuses else None
        check_symbol(r, prefix, symbol, journals[symbol], ids[symbol], status, stopped)


# --- round trip ---------------------------------------------------------------------------------


def test_round_trip_commands_in_events_market_data_book_status_and_replies_out(
    r, prefix, start_worker
):
    symbol = "RT"
    journal = key(prefix, "cmd", symbol)
    reply_key = f"{prefix}:reply:1"
    halted_reply = f"{prefix}:reply:2"
    commands = [
        (Command.new(1, 1, "sell", 101, 5), None),
        (Command.new(2, 2, "sell", 102, 3), None),
        (Command.new(3, 3, "buy", 99, 4), None),
        (Command.new(4, 4, "buy", 101, 2), reply_key),  # trades 2 @ 101
        (Command.cancel(2, 2), None),
        (Command.replace(3, 3, price=100), None),
        (Command.market(5, 5, "buy", 10), None),  # takes 3 @ 101, the rest is cancelled
        (Command.new(6, 6, "sell", 103, 7, post_only=True), None),
        (Command.new(7, 7, "sell", 100, 1, stp="cancel_newest"), None),  # trades 1 @ 100
        (Command.halt(), None),
        (Command.new(8, 8, "buy", 103, 1), halted_reply),  # BOOK_HALTED
        (Command.resume(), None),
    ]
    entries = []
    for command, reply in commands:
        fields = command_fields(command)
        entries.append([*fields, ("reply", reply)] if reply else fields)
    ids = xadd_all(r, journal, entries)
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(key(prefix, "md", symbol))
    assert pubsub.get_message(timeout=5) is None  # the subscription is confirmed

    worker = start_worker([symbol])
    status = worker.wait_drained(r, timeout=30)[symbol]
    book, per_entry = replay(entries, symbol)
    _, events = check_symbol(r, prefix, symbol, entries, ids, status)
    assert [e.kind for e in per_entry[3]] == ["accepted", "trade", "level"]
    assert status["halted"] == "0" and status["pid"] == str(worker.pid)
    assert int(status["commands"]) == len(entries)

    # The reply: the command's own event lines, pushed with a short expiry.
    worker.wait_for(lambda: r.exists(reply_key), timeout=5, what="the reply")
    assert 0 < r.pttl(reply_key) <= 30_000
    assert r.llen(reply_key) == 1
    assert decode_events(r.lpop(reply_key)) == per_entry[3]
    _, text = r.blpop([halted_reply], timeout=5)
    [rejected] = decode_events(text)
    assert (rejected.kind, rejected.reason, rejected.order_id) == ("rejected", "BOOK_HALTED", 8)

    # The L2 book key.
    depth = json.loads(r.get(key(prefix, "book", symbol)))
    bids, asks = book.depth(20)
    assert depth["symbol"] == symbol and depth["seq"] == book.seq and depth["halted"] is False
    assert depth["bids"] == [list(level) for level in bids] == [[100, 3]]
    assert depth["asks"] == [list(level) for level in asks] == [[103, 7]]
    assert abs(depth["ts_ms"] / 1000 - time.time()) < 60

    # Market data: `M from to`, the level/trade/status lines of those events, `B to bbo`; the
    # messages chain, and together they carry every market-data event.
    messages = []
    while not messages or int(messages[-1].split()[2]) < book.seq:
        message = pubsub.get_message(timeout=5)
        assert message is not None, f"market data stopped at {messages[-1:]}"
        messages.append(message["data"].decode())
    expected_from, market_events = 1, []
    for text in messages:
        lines = text.splitlines()
        head, frm, to = lines[0].split()
        assert head == "M" and int(frm) == expected_from
        market_events += decode_events("\n".join(lines[1:-1]))
        assert lines[-1].split()[:2] == ["B", to]
        expected_from = int(to) + 1
    assert market_events == [e for e in events if e.kind in ("level", "trade", "status")]
    assert messages[-1].splitlines()[-1] == f"B {book.seq} 100 3 103 7"

    # Live: a command appended while the worker idles is answered at once.
    live = Command.new(9, 9, "sell", 100, 1)
    t0 = time.monotonic()
    r.xadd(journal, dict([*command_fields(live), ("reply", f"{prefix}:reply:3")]))
    _, text = r.blpop([f"{prefix}:reply:3"], timeout=5)
    assert time.monotonic() - t0 < 2
    assert [e.kind for e in decode_events(text)] == ["accepted", "trade", "level"]

    assert worker.stop(signal.SIGTERM) == 0
    [report] = worker.reports()
    assert report["symbol"] == symbol and report["commands"] == len(entries) + 1
    pubsub.close()


def test_replies_sharing_a_key_arrive_in_journal_order(r, prefix, start_worker):
    """A process's orders name one reply list (`ReplyListener`); the worker pushes a batch's
    replies to a list together, and they pop from its right end in journal order."""
    symbol = "RPL"
    shared, other = f"{prefix}:reply:shared", f"{prefix}:reply:other"
    commands = [
        (Command.new(1, 1, "sell", 101, 5), shared),
        (Command.new(2, 2, "buy", 99, 1), other),
        (Command.new(3, 3, "buy", 101, 2), shared),  # trades 2 @ 101
        (Command.new(4, 4, "buy", 98, 1), None),
        (Command.new(5, 5, "sell", 99, 3), shared),  # trades 1 @ 99
    ]
    entries = [[*command_fields(c), ("reply", k)] if k else command_fields(c) for c, k in commands]
    xadd_all(r, key(prefix, "cmd", symbol), entries)  # before the worker: one batch
    worker = start_worker([symbol])
    worker.wait_drained(r, timeout=30)
    _, per_entry = replay(entries, symbol)
    assert r.llen(shared) == 3 and 0 < r.pttl(shared) <= 30_000
    assert [decode_events(text) for text in r.rpop(shared, 3)] == [
        per_entry[0],
        per_entry[2],
        per_entry[4],
    ]
    assert [decode_events(text) for text in r.lrange(other, 0, -1)] == [per_entry[1]]
    assert worker.stop(signal.SIGTERM) == 0


# --- crashes ------------------------------------------------------------------------------------


def test_kill_9_in_the_middle_then_restart_is_as_if_it_never_stopped(r, prefix, start_worker):
    journals, ids, positions = load_crash_journals(r, prefix)
    symbols = list(journals)
    total = {s: len(journals[s]) for s in symbols}
    args = ("--snapshot-every", "20000")

    worker = start_worker(symbols, *args)
    done = {}

    def partly_done():
        done.update({s: progress(r, prefix, s, positions[s]) for s in symbols})
        return min(done.values()) >= 25_000

    worker.wait_for(partly_done, timeout=60, what="partial progress", interval=0.001)
    worker.kill()
    at_kill = {s: progress(r, prefix, s, positions[s]) for s in symbols}
    assert any(at_kill[s] < total[s] for s in symbols), f"killed too late: {at_kill}"

    worker = start_worker(symbols, *args)
    statuses = worker.wait_drained(r, timeout=90)
    # The restart resumed from a snapshot and had events to suppress.
    recovered = recovered_logs(worker)
    assert all(recovered[s]["journal_from"] != "0-0" for s in symbols), recovered
    assert any(
        int(recovered[s]["written_seq"]) > int(recovered[s]["snapshot_seq"]) for s in symbols
    ), recovered
    assert worker.stop(signal.SIGTERM) == 0
    check_all(r, prefix, journals, ids, statuses, stopped=True)


def test_kill_9_while_snapshotting_and_restart_without_a_usable_snapshot(r, prefix, start_worker):
    journals, ids, positions = load_crash_journals(r, prefix)
    symbols = list(journals)
    everything = sum(len(entries) for entries in journals.values())
    args = ("--snapshot-every", "500")  # a snapshot in every batch's write
    rng = random.Random(7)

    kills = 0
    for target in sorted(rng.uniform(0.05, 0.9) for _ in range(5)):
        worker = start_worker(symbols, *args)

        def reached(target=target):
            done = sum(progress(r, prefix, s, positions[s]) for s in symbols)
            return done >= target * everything

        worker.wait_for(reached, timeout=60, what=f"{target:.0%} progress", interval=0.001)
        time.sleep(rng.uniform(0, 0.004))
        worker.kill()
        kills += 1
        if kills == 2:  # the next start finds no snapshot for A: replay A from the beginning
            r.delete(key(prefix, "snap", "A"))
        if kills == 3:  # ... and a corrupted one for B
            snap = key(prefix, "snap", "B")
            data = bytearray(r.hget(snap, "data"))
            data[len(data) // 2] ^= 0xFF
            r.hset(snap, "data", bytes(data))
    assert sum(progress(r, prefix, s, positions[s]) for s in symbols) < everything

    worker = start_worker(symbols, *args)
    statuses = worker.wait_drained(r, timeout=90)
    assert worker.stop(signal.SIGTERM) == 0
    check_all(r, prefix, journals, ids, statuses, stopped=True)
    lengths = {s: r.xlen(key(prefix, "evt", s)) for s in symbols}

    # No snapshot at all: the whole journal is replayed, every event suppressed.
    for symbol in symbols:
        r.delete(key(prefix, "snap", symbol))
    worker = start_worker(symbols)
    statuses = worker.wait_drained(r, timeout=90)
    assert all(rec["journal_from"] == "0-0" for rec in recovered_logs(worker).values())
    assert worker.stop(signal.SIGTERM) == 0
    assert {s: r.xlen(key(prefix, "evt", s)) for s in symbols} == lengths
    check_all(r, prefix, journals, ids, statuses, stopped=True)

    # Unusable snapshots: A's with a flipped bit, and for B a valid one of another symbol.
    snap_a = key(prefix, "snap", "A")
    good = r.hgetall(snap_a)
    r.hset(key(prefix, "snap", "B"), mapping=good)
    data = bytearray(good[b"data"])
    data[-3] ^= 0x01
    r.hset(snap_a, "data", bytes(data))
    worker = start_worker(symbols)
    statuses = worker.wait_drained(r, timeout=90)
    messages = {(rec["symbol"], rec["msg"]) for rec in worker.logs()}
    assert ("A", "snapshot unusable; replaying the whole journal") in messages
    assert ("B", "snapshot is of another symbol; replaying the whole journal") in messages
    assert all(rec["journal_from"] == "0-0" for rec in recovered_logs(worker).values())
    assert worker.stop(signal.SIGTERM) == 0
    assert {s: r.xlen(key(prefix, "evt", s)) for s in symbols} == lengths
    check_all(r, prefix, journals, ids, statuses, stopped=True)


# --- bad input ----------------------------------------------------------------------------------

NEW = {"t": "new", "acct": "1", "side": "buy", "px": "100", "qty": "1"}

# (fields, the reason of the one `rejected` event expected); ids increase so none is a duplicate.
GARBAGE = [
    ({"t": "new"}, "MALFORMED"),
    ({**NEW, "id": "10", "px": "abc"}, "MALFORMED"),
    ({**NEW, "id": "11", "qty": "1.5"}, "MALFORMED"),
    ({"t": "new", "id": "12", "acct": "1", "side": "buy", "qty": "1"}, "MALFORMED"),  # no px
    ({**NEW, "id": str(10**30)}, "MALFORMED"),
    ({**NEW, "id": "13", "px": str(10**30)}, "MALFORMED"),
    ({**NEW, "id": "-1"}, "MALFORMED"),
    ({**NEW, "id": "14", "acct": "-1"}, "MALFORMED"),
    ({**NEW, "id": "15", "side": "up"}, "MALFORMED"),
    ({**NEW, "id": "16", "tif": "day"}, "MALFORMED"),
    ({**NEW, "id": "17", "type": "stop"}, "MALFORMED"),
    ({**NEW, "id": "18", "post": "yes"}, "MALFORMED"),
    ({**NEW, "id": "19", "stp": "maybe"}, "MALFORMED"),
    ({**NEW, "id": "20", "maxpos": "lots"}, "MALFORMED"),
    ({**NEW, "id": "21", "px": "9" * 100_000}, "MALFORMED"),
    ({"t": "explode", "id": "22"}, "MALFORMED"),
    ({"t": ""}, "MALFORMED"),
    ({**NEW, "id": "23", "v": "99"}, "MALFORMED"),
    ({"t": "halt", "v": "one"}, "MALFORMED"),
    ({b"t": b"\xff\xfe\x80"}, "MALFORMED"),
    ({**NEW, "id": "24", "acct": b"\xc3\x28"}, "MALFORMED"),
    ({b"\x00\xff\x10garbage": b"\x8f" * 64, b"\xfe": b""}, "MALFORMED"),
    ({"t": "cancel", "id": "5"}, "MALFORMED"),
    ({"t": "replace", "id": "5", "acct": "1"}, "MALFORMED"),
    ({**NEW, "id": "30", "qty": "0"}, "INVALID_QUANTITY"),
    ({**NEW, "id": "31", "qty": str(2**41)}, "INVALID_QUANTITY"),
    ({**NEW, "id": "32", "qty": "-3"}, "INVALID_QUANTITY"),
    ({**NEW, "id": "33", "px": "0"}, "INVALID_PRICE"),
    ({**NEW, "id": "34", "px": str(2**60)}, "INVALID_PRICE"),
    ({**NEW, "id": "35", "type": "market", "tif": "gtc"}, "INVALID_TIME_IN_FORCE"),
    ({**NEW, "id": "36", "tif": "ioc", "post": "1"}, "INVALID_POST_ONLY"),
    ({"t": "cancel", "id": "999", "acct": "1"}, "UNKNOWN_ORDER"),
    ({**NEW, "id": "35"}, "DUPLICATE_ORDER_ID"),
]


def test_garbage_in_the_journal_is_rejected_and_the_worker_carries_on(r, prefix, start_worker):
    symbol = "JUNK"
    journal = key(prefix, "cmd", symbol)
    not_a_list = f"{prefix}:not-a-list"
    r.set(not_a_list, "a string, so LPUSH fails with WRONGTYPE")
    malformed_reply = f"{prefix}:reply:malformed"
    entries = [list(fields.items()) for fields, _ in GARBAGE]
    entries.append([("t", "new"), ("id", "x"), ("reply", malformed_reply)])
    # A valid NEW whose reply key cannot take a reply: the NEW still counts, the reply is lost.
    entries.append(
        list({**NEW, "id": "40", "side": "sell", "px": "200", "reply": not_a_list}.items())
    )
    entries += [
        [("t", "new"), ("id", "100"), ("acct", "7"), ("side", "sell"), ("px", "100"), ("qty", "5")],
        [("t", "new"), ("id", "101"), ("acct", "8"), ("side", "buy"), ("px", "100"), ("qty", "2")],
    ]
    ids = xadd_all(r, journal, entries[:10])
    worker = start_worker([symbol], "--batch-size", "7")
    worker.wait_drained(r, timeout=30)
    ids += xadd_all(r, journal, entries[10:])  # more garbage while it runs
    status = worker.wait_drained(r, timeout=30)[symbol]
    assert worker.alive()

    _, events = check_symbol(r, prefix, symbol, entries, ids, status)
    _, per_entry = replay(entries, symbol)
    for (fields, reason), produced in zip(GARBAGE, per_entry, strict=False):
        assert len(produced) == 1, (fields, produced)
        assert (produced[0].kind, produced[0].reason) == ("rejected", reason), fields
    assert (per_entry[1][0].order_id, per_entry[1][0].account) == (10, 1)  # what could be read
    *_, reply_j, unreplied, resting, taking = per_entry
    assert [e.kind for e in unreplied] == ["accepted", "level"]
    assert [e.kind for e in resting] == ["accepted", "level"]
    assert [(e.kind, e.price, e.qty) for e in taking][:2] == [
        ("accepted", 100, 2),
        ("trade", 100, 2),
    ]

    # Each malformed entry is described in its event entry, and logged.
    malformed_seqs = [e.seq for e in events if e.kind == "rejected" and e.reason == "MALFORMED"]
    described = []
    for _, fields in read_stream(r, key(prefix, "evt", symbol)):
        for line in fields.get(b"malformed", b"").decode().splitlines():
            described.append(int(line.split()[0]))
    assert described == malformed_seqs and len(malformed_seqs) == 25
    logs = worker.logs()
    assert sum(rec["msg"] == "malformed journal entry" for rec in logs) == 25
    # The reply of a malformed entry is its rejection; a reply key of the wrong type is logged,
    # and costs no session failure or recovery.
    _, text = r.blpop([malformed_reply], timeout=5)
    assert decode_events(text) == reply_j
    assert r.get(not_a_list) is not None
    assert any(rec["msg"] == "could not push a reply" for rec in logs)
    assert not [rec for rec in logs if rec["level"] == "error"], logs
    assert worker.stop(signal.SIGTERM) == 0


# --- status and stopping ------------------------------------------------------------------------


def test_idle_status_carries_the_hash_of_the_current_state(r, prefix, start_worker):
    """Even when the last batch was exactly full (no short read marked it idle), and never a
    hash of an older state next to a newer `jid`."""
    symbol = "ST"
    journal = key(prefix, "cmd", symbol)
    entries = [command_fields(Command.new(i, i % 3, "buy", 90 + i, 1)) for i in range(1, 11)]
    ids = xadd_all(r, journal, entries)
    worker = start_worker([symbol], "--batch-size", "10")
    status = worker.wait_drained(r, timeout=30)[symbol]
    check_symbol(r, prefix, symbol, entries, ids, status)
    more = [command_fields(Command.new(i, i % 3, "sell", 80 + i, 1)) for i in range(11, 21)]
    ids += xadd_all(r, journal, more)
    status = worker.wait_drained(r, timeout=30)[symbol]
    check_symbol(r, prefix, symbol, entries + more, ids, status)
    assert worker.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_finishes_cleanly_with_a_final_snapshot(r, prefix, start_worker, sig):
    symbols = ["S1", "S2"]
    entries = random_journal(5, 3000)
    ids = {s: xadd_all(r, key(prefix, "cmd", s), entries) for s in symbols}
    worker = start_worker(symbols, "--snapshot-every", "1000000", "--snapshot-interval", "3600")
    worker.wait_drained(r, timeout=30)
    assert worker.stop(sig) == 0, worker.stderr()[-2000:]
    assert "Traceback" not in worker.stderr()
    reports = {report["symbol"]: report for report in worker.reports()}
    for symbol in symbols:
        book, _ = check_symbol(r, prefix, symbol, entries, ids[symbol], stopped=True)
        report = reports[symbol]
        assert report["last_journal_id"] == ids[symbol][-1]
        assert (report["seq"], report["state_hash"]) == (book.seq, book.state_hash())
        assert report["commands"] == len(entries) and report["recoveries"] == 0
    assert {rec["symbol"] for rec in worker.logs() if rec["msg"] == "stopped"} == set(symbols)
