"""The issue's crash test: kill -9 the recorder in the middle of ~100,000 orders, restart it, and
the database equals the one a recorder that never stopped produces; positions sum to zero per
instrument and cash is conserved. Half the orders come as the gateway journals them (with the
journal's record, from which the recorder writes their rows), half from other tools."""

import random
import time

import pytest

from exchange.orders import journal
from exchange.protocol import keys

from .support import (
    assert_conserved,
    assert_engine_agrees,
    cursor_total,
    dump,
    group_pending,
    make_account,
    make_instrument,
    manage,
    random_commands,
    reset_projection,
    run_engine,
    start_manage,
    write_journal,
)

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOLS = ["CRASH", "BANG"]
COMMANDS_PER_SYMBOL = 81_000  # ~62 % NEWs: 100,000 orders over the two


def kill_when(database, log, *args, progress: int, timeout: float = 60) -> int:
    """Starts a recorder and kills it (SIGKILL) once the cursors have passed `progress`;
    returns the cursors' total after the kill."""
    process = start_manage(database, log, "run_recorder", "--until-idle", *args)
    try:
        deadline = time.monotonic() + timeout
        while cursor_total(database) < progress:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the recorder made no progress"
            time.sleep(0.002)
        process.kill()
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    return cursor_total(database)


def gateway_records(symbol: str, commands: list[dict], rng: random.Random) -> list:
    """The journal's records of about half the NEWs, as the gateway's append script keeps them."""
    records, seen = [], set()
    for fields in commands:
        if fields.get("t") != "new" or not fields.get("qty", "").isdigit():
            continue
        order_id = int(fields["id"])
        if order_id in seen or rng.random() < 0.5:
            seen.add(order_id)
            continue  # a duplicate id, or another tool's order
        seen.add(order_id)
        kind = fields.get("type", "limit")
        records.append(
            journal.PendingRecord(
                order_id=order_id,
                account_id=int(fields["acct"]),
                symbol=symbol,
                side=fields["side"],
                order_type=kind,
                time_in_force=fields.get("tif", "gtc" if kind == "limit" else "ioc"),
                price_ticks=int(fields.get("px", 0)),
                quantity_lots=int(fields["qty"]),
                post_only=fields.get("post") == "1",
                created_ms=1_700_000_000_000 + order_id,
                client_order_id=f"g-{symbol}-{order_id}",
            )
        )
    return records


def write_records(r, records: list) -> None:
    pipe = r.pipeline(transaction=False)
    for record in records:
        pipe.hset(keys.pending_key(record.account_id), str(record.order_id), record.encode())
    pipe.execute()


def test_kill_9_in_the_middle_and_restart_equals_a_recorder_that_never_stopped(
    file_db, r, tmp_path
):
    rng = random.Random(20241124)
    make_instrument("CRASH", tick="0.01", lot="1")
    make_instrument("BANG", tick="0.05", lot="0.5")
    accounts = [make_account(f"trader{i:02d}").pk for i in range(20)]
    records, news = [], 0
    for first_id, symbol in zip((1, 10_000_000), SYMBOLS, strict=True):
        # The exchange's ids are unique across symbols (the gateway's counter is one).
        commands = random_commands(rng, COMMANDS_PER_SYMBOL, accounts, first_id=first_id)
        # With fees (one a rebate): the restarted recorder must charge what the steady one does.
        maker, taker = ("-1", "3") if symbol == "CRASH" else ("2", "7")
        commands.insert(0, {"t": "fees", "maker": maker, "taker": taker})
        news += sum(1 for c in commands if c["t"] == "new")
        write_journal(r, symbol, commands)
        records += gateway_records(symbol, commands, rng)
    write_records(r, records)
    r.set(keys.id_counter_key(), 20_000_000)  # where the gateway's counter would be
    run_engine(file_db, SYMBOLS, batch_size=100)
    last = {s: int(r.xrevrange(keys.key("evt", s), count=1)[0][1][b"last"]) for s in SYMBOLS}
    total = sum(last.values())
    assert news >= 100_000

    # Killed twice in the middle; each time the next recorder is a new consumer, which has to
    # wait for the dead one's unacknowledged entries and claim them.
    claim = ("--claim-idle-ms", "300", "--batch", "4")
    seen = kill_when(
        file_db, tmp_path / "first.log", "--consumer", "first", *claim, progress=total // 3
    )
    assert total // 3 <= seen < total
    seen = kill_when(
        file_db, tmp_path / "second.log", "--consumer", "second", *claim, progress=2 * total // 3
    )
    assert 2 * total // 3 <= seen < total
    abandoned = group_pending(r, SYMBOLS)
    result = manage(file_db, "run_recorder", "--until-idle", "--consumer", "third", *claim)
    if abandoned:
        assert '"claimed": 0' not in result.stdout, result.stdout
    assert cursor_total(file_db) == total
    assert group_pending(r, SYMBOLS) == 0
    restarted = dump()
    gateway_rows = {(o[0], o[1], o[3]) for o in restarted["orders"] if o[3].startswith("g-")}
    assert len(gateway_rows) > 40_000
    assert gateway_rows <= {(rec.symbol, rec.order_id, rec.client_order_id) for rec in records}
    assert not any(r.hlen(keys.pending_key(a)) for a in accounts)  # the records are gone
    assert_conserved(SYMBOLS)
    assert_engine_agrees(r, SYMBOLS)
    assert len(restarted["trades"]) > 40_000
    fees = [fill[8] for fill in restarted["fills"]]
    assert sum(fee > 0 for fee in fees) > 20_000 and sum(fee < 0 for fee in fees) > 1_000

    # The same streams recorded again, from scratch, by a recorder that never stops.
    reset_projection(r, SYMBOLS)
    write_records(r, records)
    manage(file_db, "run_recorder", "--until-idle", "--consumer", "steady")
    assert cursor_total(file_db) == total
    steady = dump()
    # Named row by row: a whole-dump comparison prints nothing useful about what differs.
    for table, rows in steady.items():
        only_steady = sorted(set(rows) - set(restarted[table]), key=repr)[:5]
        only_restarted = sorted(set(restarted[table]) - set(rows), key=repr)[:5]
        assert rows == restarted[table], (
            f"{table}: only in the steady recorder's {only_steady}, "
            f"only in the restarted one's {only_restarted}"
        )
