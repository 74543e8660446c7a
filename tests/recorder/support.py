"""Helpers of the recorder tests: instruments and accounts, event stream entries built from an
in-process book, random journals, subprocesses, and a comparable dump of the projection."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import flashbook_engine
from django.conf import settings
from django.db import connection
from django.db.models import F, Sum

from exchange.models import (
    Account,
    Fill,
    Instrument,
    Order,
    Position,
    RecorderCursor,
    Trade,
)
from exchange.orders import journal
from exchange.protocol import keys
from exchange.recorder import GROUP, StreamEntry

ROOT = Path(__file__).resolve().parents[2]
# Stream ids of the entries the tests build: a fixed time, so that dumps compare equal.
BASE_MS = 1_700_000_000_000


def engine_takes_on(symbol: str) -> None:
    """What an engine worker writes when it takes a symbol on (its status hash), for tests that
    journal orders before an engine runs (`run_engine` below, in batch) or run none: without it the
    gateway refuses the symbol's orders (`instrument_not_served`). The engine overwrites it."""
    journal.client().hset(keys.key("status", symbol), mapping={"seq": 0, "jid": "0-0", "pid": 0})


def publish_band(symbol: str, low: int, high: int) -> None:
    """What an engine with a price band publishes in its book key (the band's limits, ticks), for
    tests that journal orders before an engine runs: a market buy is valued at the band's upper
    limit (buying power) and refused while no band is published. The engine overwrites it."""
    book = {"symbol": symbol, "seq": 0, "halted": False, "ts_ms": 0, "band": [low, high]}
    journal.client().set(keys.key("book", symbol), json.dumps(book))


def make_instrument(
    symbol: str, tick: str = "0.01", lot: str = "1", *, served: bool = True, **overrides
) -> Instrument:
    """An instrument, with (`served`) an engine having taken it on (`engine_takes_on`)."""
    fields = {
        "name": f"{symbol} Corp.",
        "tick_size": Decimal(tick),
        "lot_size": Decimal(lot),
        "min_order_qty": Decimal(lot),
        "max_order_qty": Decimal(lot) * 100_000,
        "reference_price": Decimal(tick) * 10_000,
        # No price band unless a test gives one: their prices are anywhere (the band's own tests
        # and the demo's instruments have one).
        "price_band_pct": Decimal("0"),
        # Nor a volatility guard: a test's prices jump about.
        "volatility_move_pct": Decimal("0"),
    }
    fields.update(overrides)
    instrument = Instrument.objects.create(symbol=symbol, **fields)
    if served:
        engine_takes_on(symbol)
    return instrument


def make_account(name: str, cash: str = "100000") -> Account:
    return Account.objects.create(name=name, cash=Decimal(cash), initial_cash=Decimal(cash))


# ----- event stream entries from an in-process book ------------------------------------------


def _flag(value: bool) -> str:
    return "1" if value else "0"


def event_line(event) -> str:
    """The worker's text line of an event (docs/protocol.md, "Event lines")."""
    d = event.to_dict()
    kind = d["kind"]
    if kind == "accepted":
        fields = [
            "A",
            d["order_id"],
            d["account"],
            d["side"],
            d["order_type"],
            d["tif"],
            d["price"],
            d["qty"],
            _flag(d["post_only"]),
            d["client_ref"],
        ]
    elif kind == "rejected":
        fields = ["J", d["order_id"], d["account"], d["command"], d["reason"], d["client_ref"]]
    elif kind == "trade":
        fields = [
            "T",
            d["maker_order_id"],
            d["maker_account"],
            d["taker_order_id"],
            d["taker_account"],
            d["price"],
            d["qty"],
            d["aggressor"],
            d["maker_remaining"],
            d["taker_remaining"],
            d["maker_fee_bps"],
            d["taker_fee_bps"],
        ]
    elif kind == "cancelled":
        fields = ["C", d["order_id"], d["account"], d["side"], d["price"], d["qty"], d["reason"]]
    elif kind == "replaced":
        fields = [
            "R",
            d["order_id"],
            d["account"],
            d["side"],
            d["old_price"],
            d["old_qty"],
            d["price"],
            d["qty"],
            _flag(d["kept_priority"]),
        ]
    elif kind == "level":
        fields = ["L", d["side"], d["price"], d["qty"]]
    else:
        fields = ["S", d["status"]]
    return " ".join(str(part) for part in [d["seq"], *fields])


def entry(events: list, index: int = 0) -> StreamEntry:
    """One event stream entry holding `events`, as the worker writes it."""
    lines = "".join(event_line(event) + "\n" for event in events)
    assert flashbook_engine.decode_events(lines) == events  # the formatter is faithful
    return StreamEntry(f"{BASE_MS + index}-0", events[0].seq, events[-1].seq, lines)


def entries(groups: Iterable[list]) -> list[StreamEntry]:
    return [entry(events, index) for index, events in enumerate(groups)]


def split(events: list, rng: random.Random, max_len: int = 20) -> list[list]:
    """Cuts events into consecutive pieces at random points."""
    pieces, start = [], 0
    while start < len(events):
        end = min(len(events), start + rng.randint(1, max_len))
        pieces.append(events[start:end])
        start = end
    return pieces


class Book:
    """An in-process book fed with journal entries; remembers every event."""

    def __init__(self, symbol: str):
        self.book = flashbook_engine.OrderBook(symbol)
        self.events: list = []

    def __call__(self, **fields) -> list:
        events = self.book.apply_entry({k: str(v) for k, v in fields.items()})
        self.events.extend(events)
        return events

    def new(self, order_id, account, side, qty, px=None, **extra) -> list:
        fields = {"t": "new", "id": order_id, "acct": account, "side": side, "qty": qty}
        if px is not None:
            fields["px"] = px
        return self(**fields, **extra)


# ----- random journals ---------------------------------------------------------------------


def random_commands(
    rng: random.Random,
    count: int,
    accounts: list[int],
    *,
    first_id: int = 1,
    specials: bool = True,
) -> list[dict[str, str]]:
    """A random journal of one symbol: limit, market, IOC, FOK and post-only orders with every
    self-trade mode (so self-trades happen), position limits, cancels (some of other accounts'
    orders), replaces that move orders across the book, and — with `specials` — a halt and
    resume, a reset, malformed entries and duplicate ids. Ids increase as the protocol asks."""
    commands: list[dict] = []
    next_id = first_id
    live: list[tuple[int, int]] = []
    mid = 10_000
    special_at = {count // 3: "halt", count // 3 + 40: "resume", count // 2: "reset"}
    for index in range(count):
        special = special_at.get(index) if specials else None
        if special:
            commands.append({"t": special})
            continue
        if specials and rng.random() < 0.002:
            commands.append(
                rng.choice(
                    [
                        {"t": "new", "id": str(next_id), "acct": "1", "qty": "x"},
                        {
                            "t": "new",
                            "id": str(max(1, next_id - 5)),
                            "acct": str(accounts[0]),
                            "side": "buy",
                            "px": "10000",
                            "qty": "1",
                        },
                        {"t": "bogus"},
                    ]
                )
            )
            if commands[-1].get("qty") == "x":
                next_id += 1
            continue
        mid += rng.choice((-1, 0, 0, 1))
        roll = rng.random()
        if roll < 0.62 or not live:
            account = rng.choice(accounts)
            side = rng.choice(("buy", "sell"))
            offset = rng.randint(-8, 12)
            price = mid - offset if side == "buy" else mid + offset
            fields = {
                "t": "new",
                "id": next_id,
                "acct": account,
                "side": side,
                "px": price,
                "qty": rng.randint(1, 30),
                "stp": rng.choice(
                    ("none", "none", "cancel_newest", "cancel_oldest", "cancel_both")
                ),
            }
            kind = rng.random()
            if kind < 0.08:
                fields["type"] = "market"
                del fields["px"]
                fields["tif"] = rng.choice(("ioc", "fok"))
            elif kind < 0.16:
                fields["tif"] = rng.choice(("ioc", "fok"))
            elif kind < 0.2:
                fields["post"] = 1
            if rng.random() < 0.05:
                fields["maxpos"] = rng.randint(10, 200)
            commands.append(fields)
            live.append((next_id, account))
            next_id += 1
        elif roll < 0.85:
            order_id, account = rng.choice(live)
            if rng.random() < 0.05:
                account = rng.choice(accounts)  # maybe someone else's: UNKNOWN_ORDER
            commands.append({"t": "cancel", "id": order_id, "acct": account})
        else:
            order_id, account = rng.choice(live)
            fields = {"t": "replace", "id": order_id, "acct": account}
            if rng.random() < 0.7:
                fields["px"] = mid + rng.randint(-15, 15)
            if rng.random() < 0.6 or "px" not in fields:
                fields["qty"] = rng.randint(1, 30)
            commands.append(fields)
        if len(live) > 400:
            del live[: len(live) - 400]
    return [{k: str(v) for k, v in c.items()} for c in commands]


def write_journal(client, symbol: str, commands: list[dict]) -> None:
    pipe = client.pipeline(transaction=False)
    for index, fields in enumerate(commands, 1):
        pipe.xadd(keys.key("cmd", symbol), fields)
        if index % 5000 == 0:
            pipe.execute()
    pipe.execute()


def replay_journal(client, symbol: str) -> flashbook_engine.OrderBook:
    """The book the engine holds after the symbol's journal, rebuilt in-process."""
    book = flashbook_engine.OrderBook(symbol)
    for _, fields in client.xrange(keys.key("cmd", symbol)):
        book.apply_entry(fields)
    return book


def stream_events(client, symbol: str) -> list:
    events = []
    for _, fields in client.xrange(keys.key("evt", symbol)):
        events.extend(flashbook_engine.decode_events(fields[b"e"]))
    return events


# ----- subprocesses ------------------------------------------------------------------------


def database_url(database: Path | str) -> str:
    """`file_db` as a DATABASE_URL: an SQLite file's path, or already a URL (PostgreSQL)."""
    return database if isinstance(database, str) else f"sqlite:///{database}"


def subprocess_env(database: Path | str) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=database_url(database),
        REDIS_URL=settings.REDIS_URL,
        FLASHBOOK_REDIS_PREFIX=settings.FLASHBOOK_REDIS_PREFIX,
        SECRET_KEY=settings.SECRET_KEY,
        DEBUG="1" if settings.DEBUG else "0",
        LOG_LEVEL="INFO",
    )


def manage(database: Path | str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `manage.py args` to completion; fails the test with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=subprocess_env(database),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result


def start_manage(database: Path | str, log: Path, *args: str) -> subprocess.Popen:
    """Starts `manage.py args`; its output goes to a file (never a pipe that could fill)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=subprocess_env(database),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run_concurrently(recorders: list, timeout: float) -> None:
    """Runs the recorders until idle, each in a thread of its own, started together; fails the
    test with what any of them raised."""
    start = threading.Barrier(len(recorders))
    errors = []

    def run(recorder):
        try:
            start.wait()
            recorder.run(until_idle=True)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(rec,)) for rec in recorders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not errors, errors


def run_engine(database: Path | str, symbols: list[str], batch_size: int = 200) -> None:
    manage(
        database,
        "run_engine",
        "--symbols",
        ",".join(symbols),
        "--exit-when-drained",
        "--batch-size",
        str(batch_size),
    )


# ----- the projection, comparable --------------------------------------------------------


def dump() -> dict[str, list]:
    """Everything the recorder writes, by natural keys (no primary keys, no row timestamps),
    sorted: two databases that recorded the same streams dump equal."""

    def rows(query, *fields):
        return sorted(query.values_list(*fields), key=repr)

    return {
        "orders": rows(
            Order.objects,
            "instrument__symbol",
            "order_id",
            "account__name",
            "client_order_id",
            "side",
            "order_type",
            "time_in_force",
            "post_only",
            "price",
            "quantity",
            "filled_quantity",
            "average_fill_price",
            "status",
            "reject_reason",
        ),
        "trades": rows(
            Trade.objects,
            "instrument__symbol",
            "seq",
            "price",
            "quantity",
            "aggressor_side",
            "maker_order_id",
            "taker_order_id",
            "executed_at",
        ),
        "fills": rows(
            Fill.objects,
            "instrument__symbol",
            "trade__seq",
            "role",
            "order__order_id",
            "account__name",
            "side",
            "price",
            "quantity",
            "fee",
            "executed_at",
        ),
        "positions": rows(
            Position.objects,
            "account__name",
            "instrument__symbol",
            "quantity",
            "cost_basis",
            "realized_pnl",
        ),
        "cash": rows(Account.objects, "name", "cash"),
        "cursors": rows(RecorderCursor.objects, "instrument__symbol", "last_seq"),
        "halted": rows(Instrument.objects, "symbol", "halted"),
    }


def reset_projection(client, symbols: list[str]) -> None:
    """Forgets everything recorded — rows, cursors and the consumer group — so that the streams
    can be recorded again from the start. Only for journals without gateway orders."""
    Fill.objects.all().delete()
    Trade.objects.all().delete()
    Order.objects.all().delete()
    Position.objects.all().delete()
    RecorderCursor.objects.all().delete()
    Account.objects.update(cash=F("initial_cash"))
    Instrument.objects.update(halted=False)
    for symbol in symbols:
        client.xgroup_destroy(keys.key("evt", symbol), GROUP)


def group_pending(client, symbols: list[str]) -> int:
    return sum(client.xpending(keys.key("evt", s), GROUP)["pending"] for s in symbols)


def cursor_total(database: Path | str) -> int:
    """The sum of the recorder cursors, read straight from the file (another process writes);
    on PostgreSQL through the test's own connection (autocommit: it sees what others commit)."""
    if isinstance(database, str):
        total = RecorderCursor.objects.aggregate(total=Sum("last_seq"))["total"]
        return total or 0
    import sqlite3

    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    try:
        table = RecorderCursor._meta.db_table
        (total,) = db.execute(f"SELECT COALESCE(SUM(last_seq), 0) FROM {table}").fetchone()
        return total
    finally:
        db.close()


def assert_engine_agrees(client, symbols: list[str]) -> None:
    """The database against the engine's own state, rebuilt from the journals: every known
    account's position (in lots), every resting order's open quantity, the halt."""
    for symbol in symbols:
        instrument = Instrument.objects.get(symbol=symbol)
        book = replay_journal(client, symbol)
        positions = {
            p.account_id: instrument.qty_to_lots(p.quantity)
            for p in Position.objects.filter(instrument=instrument)
        }
        known = set(Account.objects.values_list("pk", flat=True))
        engine_positions = {
            a: e.position for a, e in book.exposures().items() if e.position and a in known
        }
        assert {a: q for a, q in positions.items() if q} == engine_positions, symbol
        open_orders = {
            o.order_id: instrument.qty_to_lots(o.quantity - o.filled_quantity)
            for o in Order.objects.filter(
                instrument=instrument, status__in=["NEW", "PARTIALLY_FILLED"]
            )
        }
        resting = {o.order_id: o.qty for o in book.resting_orders() if o.account in known}
        assert open_orders == resting, symbol
        assert instrument.halted == book.halted


def assert_conserved(symbols: list[str]) -> None:
    """Positions of each instrument sum to zero; cash is neither created nor destroyed, but for
    the fees: over all accounts, the cash's change is minus the fees the fills carry."""
    for symbol in symbols:
        total = sum(
            Position.objects.filter(instrument__symbol=symbol).values_list("quantity", flat=True),
            Decimal(0),
        )
        assert total == 0, symbol
    cash = sum(Account.objects.values_list("cash", flat=True), Decimal(0))
    initial = sum(Account.objects.values_list("initial_cash", flat=True), Decimal(0))
    fees = sum(Fill.objects.values_list("fee", flat=True), Decimal(0))
    assert cash - initial == -fees


def close_connection() -> None:
    connection.close()
