"""The recorder with the real engine worker (a subprocess) and Redis: orders from the gateway and
from other tools, several recorders in one group, abandoned entries, a clean stop."""

import random
import signal
import time
from decimal import Decimal as D

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError

from exchange.models import Account, Fill, Order, Position, RecorderCursor, Trade
from exchange.orders import gateway, journal
from exchange.orders.gateway import OrderRequest
from exchange.protocol import keys
from exchange.recorder import GROUP, Recorder, record_entries
from exchange.recorder import consumer as recorder_module

from .support import (
    Book,
    assert_conserved,
    assert_engine_agrees,
    cursor_total,
    dump,
    entry,
    group_pending,
    make_account,
    make_instrument,
    manage,
    publish_band,
    random_commands,
    reset_projection,
    run_concurrently,
    run_engine,
    start_manage,
    stream_events,
    write_journal,
)

pytestmark = pytest.mark.django_db(transaction=True)


def submit(account, symbol, side, quantity, price=None, **extra) -> Order:
    request = OrderRequest(
        symbol=symbol,
        side=side,
        quantity=D(str(quantity)),
        price=None if price is None else D(price),
        **extra,
    )
    return gateway.blocking(gateway.order_submit)(account=account, request=request).order


def tool_new(symbol: str, fields: dict) -> int:
    """A NEW written to the journal by another tool than the gateway: an id from the exchange's
    counter, no record, no client order id."""
    order_id = journal.client().incr(keys.id_counter_key())
    journal.append(symbol, {"t": "new", "id": order_id, **fields})
    return order_id


cancel = gateway.blocking(gateway.order_cancel)
replace = gateway.blocking(gateway.order_replace)
book_command = gateway.blocking(gateway.instrument_command)


def oracle(r, symbols, known: set[int]) -> dict:
    """What the event streams say, counted independently of the recorder."""
    trades = fills = 0
    filled: dict[tuple[str, int], int] = {}
    for symbol in symbols:
        for event in stream_events(r, symbol):
            if event.kind != "trade":
                continue
            trades += 1
            for order_id, account in (
                (event.maker_order_id, event.maker_account),
                (event.taker_order_id, event.taker_account),
            ):
                if account in known:
                    fills += 1
                    filled[symbol, order_id] = filled.get((symbol, order_id), 0) + event.qty
    return {"trades": trades, "fills": fills, "filled": filled}


@pytest.mark.parametrize("mode", ["in_process", "subprocess"])
def test_gateway_and_tool_orders_through_the_engine(file_db, r, mode):
    acme = make_instrument("ACME", tick="0.01", lot="1")
    beta = make_instrument("BETA", tick="0.05", lot="0.5")
    alice, bob, carol, desk = (make_account(n) for n in ("alice", "bob", "carol", "desk"))

    a1 = submit(alice, "ACME", "sell", 10, "100.00")
    b1 = submit(bob, "ACME", "buy", 4, "100.50")  # 4 @ 100.00, alice is the maker
    c1 = submit(carol, "ACME", "buy", 3, "99.00")
    cancel(account=carol, order=c1)
    c2 = submit(carol, "ACME", "buy", 1, "100.00", post_only=True)  # would cross: rejected
    publish_band("ACME", 1, 20_000)  # the market buy below is valued at 200.00 a lot
    b2 = submit(bob, "ACME", "buy", 10, order_type="market")  # 6 @ 100.00, 4 expire
    # Other tools write to the journal too: a known and an unknown account.
    tool_id = tool_new("ACME", {"acct": desk.pk, "side": "sell", "px": 10010, "qty": 5})
    tool_new("ACME", {"acct": 424242, "side": "sell", "px": 10020, "qty": 2})
    b3 = submit(bob, "ACME", "buy", 7, "100.20")  # 5 @ 100.10 (desk) and 2 @ 100.20 (unknown)
    a3 = submit(alice, "ACME", "buy", 5, "99.00")
    replace(account=alice, order=a3, price=D("99.50"), quantity=D(2))
    book_command(instrument=acme, command="halt")
    c3 = submit(carol, "ACME", "buy", 1, "100.00")  # the engine's book is halted
    book_command(instrument=acme, command="resume")
    a4 = submit(alice, "BETA", "sell", "1.5", "20.05")
    b4 = submit(bob, "BETA", "buy", "2.0", "20.10")  # 1.5 @ 20.05

    # The journal is the orders' only write: until the recorder has run, its records are all.
    assert not Order.objects.exists()
    accounts = (alice, bob, carol, desk)
    assert [len(journal.pending_orders(a.pk)) for a in accounts] == [3, 4, 3, 0]
    run_engine(file_db, ["ACME", "BETA"])
    if mode == "in_process":
        stats = Recorder().run(until_idle=True)
        assert stats.trades == 5
    else:
        result = manage(file_db, "run_recorder", "--until-idle")
        assert '"trades": 5' in result.stdout
        assert "recorder progress" in result.stderr and "recorder stop" in result.stderr

    def status(placed):  # the row the recorder wrote for an order the gateway placed
        row = Order.objects.get(pk=placed.pk)
        return (row.status, row.reject_reason, row.filled_quantity, row.average_fill_price)

    assert status(a1) == ("FILLED", "", D(10), D(100))
    assert status(b1) == ("FILLED", "", D(4), D(100))
    assert status(c1) == ("CANCELED", "", D(0), None)
    assert status(c2) == ("REJECTED", "POST_ONLY_WOULD_CROSS", D(0), None)
    assert status(b2) == ("EXPIRED", "REMAINDER", D(6), D(100))
    assert status(b3) == ("FILLED", "", D(7), D("100.12857143"))  # (500.5 + 200.4) / 7
    assert status(a3) == ("NEW", "", D(0), None)
    a3 = Order.objects.get(pk=a3.pk)
    assert (a3.price, a3.quantity) == (D("99.50"), D(2))
    assert status(c3) == ("REJECTED", "BOOK_HALTED", D(0), None)
    assert status(a4) == ("FILLED", "", D("1.5"), D("20.05"))
    assert status(b4) == ("PARTIALLY_FILLED", "", D("1.5"), D("20.05"))
    tool = Order.objects.get(instrument=acme, order_id=tool_id)
    assert (tool.account, tool.client_order_id, tool.status) == (
        desk,
        f"engine-ACME-{tool_id}",
        "FILLED",
    )
    assert Order.objects.count() == 11  # 10 from the gateway, 1 for the desk, none for 424242
    assert not Order.objects.filter(order_id__isnull=True).exists()
    assert Order.objects.filter(client_order_id__startswith="engine-").count() == 1
    # Recorded: the journal's records are gone.
    assert [len(journal.pending_orders(a.pk)) for a in accounts] == [0, 0, 0, 0]

    for account, expected in (
        (alice, D(100_000) + 1000 + D("30.075")),
        (bob, D(100_000) - 1000 - D("700.9") - D("30.075")),
        (carol, D(100_000)),
        (desk, D(100_000) + D("500.5")),
    ):
        account.refresh_from_db()
        assert account.cash == expected, account.name
    positions = {
        (p.account.name, p.instrument.symbol): (p.quantity, p.cost_basis, p.realized_pnl)
        for p in Position.objects.select_related("account", "instrument")
    }
    assert positions == {
        ("alice", "ACME"): (D(-10), D(-1000), D(0)),
        # The exact cost (an average of 1700.9 / 17, never rounded and re-multiplied).
        ("bob", "ACME"): (D(17), D("1700.9"), D(0)),
        ("desk", "ACME"): (D(-5), D("-500.5"), D(0)),
        ("alice", "BETA"): (D("-1.5"), D("-30.075"), D(0)),
        ("bob", "BETA"): (D("1.5"), D("30.075"), D(0)),
    }
    bob_acme = Position.objects.get(account=bob, instrument__symbol="ACME")
    assert bob_acme.average_price == D("100.05294118")  # derived, for display

    said = oracle(r, ["ACME", "BETA"], {alice.pk, bob.pk, carol.pk, desk.pk})
    assert Trade.objects.count() == said["trades"] == 5
    assert Fill.objects.count() == said["fills"] == 9
    for order in Order.objects.select_related("instrument"):
        lots = said["filled"].get((order.instrument.symbol, order.order_id), 0)
        assert order.instrument.qty_to_lots(order.filled_quantity) == lots
    assert_engine_agrees(r, ["ACME", "BETA"])
    assert not beta.positions.filter(quantity__gt=0).exclude(account=bob).exists()
    assert group_pending(r, ["ACME", "BETA"]) == 0


def random_streams(r, database, symbols, commands=2500, batch_size=20, seed=7):
    """Instruments, accounts and a random journal per symbol, run through the engine."""
    rng = random.Random(seed)
    for symbol in symbols:
        make_instrument(symbol, tick="0.01", lot="0.5")
    accounts = [make_account(f"trader{i:02d}").pk for i in range(12)]
    for symbol in symbols:
        write_journal(r, symbol, random_commands(rng, commands, accounts))
    run_engine(database, symbols, batch_size=batch_size)
    return accounts


def test_two_recorders_in_one_group_make_the_database_one_recorder_makes(file_db, r):
    symbols = ["ONE", "TWO"]
    random_streams(r, file_db, symbols)
    entries = sum(r.xlen(keys.key("evt", s)) for s in symbols)
    recorders = [Recorder(symbols, consumer=name, batch=2) for name in ("left", "right")]
    run_concurrently(recorders, 120)
    left, right = (rec.stats for rec in recorders)
    assert left.entries > 0 and right.entries > 0, (left, right)
    assert left.entries + right.entries == entries
    assert group_pending(r, symbols) == 0
    shared = dump()
    assert_engine_agrees(r, symbols)
    assert_conserved(symbols)

    reset_projection(r, symbols)
    alone = Recorder(symbols, consumer="alone", batch=7).run(until_idle=True)
    assert alone.entries == entries
    assert dump() == shared


def test_entries_of_a_dead_recorder_are_claimed(file_db, r):
    symbols = ["ONE", "TWO"]
    random_streams(r, file_db, symbols, commands=600)
    recorder = Recorder(symbols, consumer="heir", claim_idle_ms=200, batch=5)
    recorder.ensure_groups()
    # A recorder that read entries and died before acknowledging them.
    taken = r.xreadgroup(GROUP, "dead", {keys.key("evt", s): ">" for s in symbols}, count=3)
    assert sum(len(entries) for _, entries in taken) == 6
    stats = recorder.run(until_idle=True)
    assert stats.claimed == 6
    assert group_pending(r, symbols) == 0
    for symbol in symbols:
        last = int(r.xrevrange(keys.key("evt", symbol), count=1)[0][1][b"last"])
        assert RecorderCursor.objects.get(instrument__symbol=symbol).last_seq == last
    assert_engine_agrees(r, symbols)


def test_a_recorder_claims_only_the_entries_of_others(file_db, r):
    """Its own entries, idle as long (waiting for the one before them on a slow machine), are not
    taken over from itself: the count is of entries a dead recorder left."""
    symbols = ["ONE", "TWO"]
    random_streams(r, file_db, symbols, commands=200)
    recorder = Recorder(symbols, consumer="heir", claim_idle_ms=100, batch=5)
    recorder.ensure_groups()
    streams = {keys.key("evt", s): ">" for s in symbols}
    r.xreadgroup(GROUP, "dead", streams, count=3)
    r.xreadgroup(GROUP, "heir", streams, count=4)
    time.sleep(0.25)
    recorder._claim_abandoned()
    assert recorder.stats.claimed == 6
    for symbol in symbols:
        owners = r.xpending(keys.key("evt", symbol), GROUP)["consumers"]
        assert owners == [{"name": b"heir", "pending": 7}]


def test_redelivered_entries_are_acknowledged_and_change_nothing(file_db, r):
    symbols = ["ONE", "TWO"]
    random_streams(r, file_db, symbols, commands=800)
    first = Recorder(symbols, batch=3).run(until_idle=True)
    recorded = dump()
    # As if no entry had ever been acknowledged: every one is delivered again.
    for symbol in symbols:
        r.xgroup_setid(keys.key("evt", symbol), GROUP, "0")
    again = Recorder(symbols, batch=3).run(until_idle=True)
    assert (again.entries, again.events, again.duplicates) == (0, 0, first.entries)
    assert group_pending(r, symbols) == 0
    assert dump() == recorded


def test_sigterm_stops_the_recorder_cleanly(file_db, r, tmp_path):
    symbols = ["ONE", "TWO"]
    random_streams(r, file_db, symbols, commands=400)
    total = sum(stream_events(r, s)[-1].seq for s in symbols)
    log = tmp_path / "recorder.log"
    process = start_manage(file_db, log, "run_recorder", "--consumer", "service")
    try:
        deadline = time.monotonic() + 60
        while cursor_total(file_db) < total:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the recorder did not catch up"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert (
        "recorder start consumer=service" in output and "recorder stop consumer=service" in output
    )
    assert '"recorder": "service"' in output
    assert group_pending(r, symbols) == 0
    for symbol in symbols:  # it left the group: nothing of its own was pending
        consumers = r.xinfo_consumers(keys.key("evt", symbol), GROUP)
        assert b"service" not in [c["name"] for c in consumers]
    assert_engine_agrees(r, symbols)


def test_transient_database_errors_are_retried(file_db, r, monkeypatch):
    """A failed transaction (here: SQLite's "database is locked") is rolled back, nothing is
    acknowledged, and the entries are recorded on the next try."""
    instrument = make_instrument("ONE")
    alice, bob = make_account("alice"), make_account("bob")
    book = Book("ONE")
    events = book.new(1, alice.pk, "sell", 5, 10000) + book.new(2, bob.pk, "buy", 3, 10000)
    for index, piece in enumerate([events[:2], events[2:]]):
        written = entry(piece, index)
        fields = {"first": written.first, "last": written.last, "jid": "0-1", "e": written.lines}
        r.xadd(keys.key("evt", "ONE"), fields)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return record_entries(*args, **kwargs)

    monkeypatch.setattr(recorder_module, "record_entries", flaky)
    stats = Recorder(["ONE"]).run(until_idle=True)
    assert (stats.entries, stats.trades, len(calls)) == (2, 1, 2)
    assert RecorderCursor.objects.get(instrument=instrument).last_seq == events[-1].seq
    assert Trade.objects.get().quantity == D(3)
    assert group_pending(r, ["ONE"]) == 0


def test_unknown_symbols_are_refused(file_db, r):
    make_instrument("ONE")
    with pytest.raises(CommandError, match="unknown symbols: NOPE"):
        call_command("run_recorder", symbols="ONE,NOPE", until_idle=True)
    assert Account.objects.count() == 0


def test_under_load_transactions_are_spaced_by_the_minimum_interval(file_db, r, monkeypatch):
    make_instrument("ACME", tick="0.01", lot="1")
    recorder = Recorder(["ACME"], min_interval_ms=40)
    recorder._groups_ready = True
    recorder._next_claim = float("inf")
    progress = iter([True, True, False, False])  # the ">" reads of four passes

    def consume(keys, start, block):
        return next(progress) if start == ">" else False

    class Clock:
        now = 100.0
        slept: list[float] = []

        @staticmethod
        def monotonic():
            return Clock.now

        @staticmethod
        def sleep(seconds):
            Clock.slept.append(seconds)

    monkeypatch.setattr(recorder, "_consume", consume)
    monkeypatch.setattr(recorder_module, "time", Clock)
    recorder._step(False)  # idle before: read at once
    assert Clock.slept == []
    Clock.now = 100.01
    recorder._step(False)  # 10 ms after a transaction: waits the other 30 ms
    assert Clock.slept == [pytest.approx(0.03)]
    Clock.now = 100.2
    recorder._step(False)  # long enough after: no wait
    recorder._step(False)  # nothing was recorded last time: no wait
    assert Clock.slept == [pytest.approx(0.03)]
