"""Scale-out: two engine workers owning disjoint symbols and two recorders in one consumer group,
all running at once, make the same event streams and the same database as one engine and one
recorder do from the same journals."""

import json
import random
import signal
import time

import pytest

from exchange.models import RecorderCursor
from exchange.protocol import keys
from tests.recorder.support import (
    assert_conserved,
    assert_engine_agrees,
    dump,
    group_pending,
    make_account,
    make_instrument,
    manage,
    random_commands,
    reset_projection,
    start_manage,
    stream_events,
    write_journal,
)

pytestmark = pytest.mark.django_db(transaction=True)

SHARDS = [["AAA", "BBB"], ["CCC", "DDD"]]
SYMBOLS = [symbol for shard in SHARDS for symbol in shard]
COMMANDS_PER_SYMBOL = 1200


def comparable(projection: dict) -> dict:
    """The dump without the trade and fill times: those are when the engine wrote the event
    entry (its stream id), which differs between two runs. Everything else must not."""
    return {
        **projection,
        "trades": [row[:-1] for row in projection["trades"]],
        "fills": [row[:-1] for row in projection["fills"]],
    }


def wait_until(condition, processes, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process, log in processes:
            assert process.poll() in (None, 0), log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def recorded(upto: dict[str, int]) -> bool:
    cursors = dict(RecorderCursor.objects.values_list("instrument__symbol", "last_seq"))
    return all(cursors.get(symbol, 0) == seq for symbol, seq in upto.items())


def last_seq(r, symbol: str) -> int:
    newest = r.xrevrange(keys.key("evt", symbol), count=1)
    return int(newest[0][1][b"last"]) if newest else 0


def forget_the_engines(r) -> None:
    """Deletes what the engines wrote (events, snapshots, status, books): the journals stay, so
    an engine started now replays them from the beginning."""
    for symbol in SYMBOLS:
        r.delete(*(keys.key(kind, symbol) for kind in ("evt", "snap", "status", "book")))


@pytest.mark.slow
def test_sharded_engines_and_grouped_recorders_equal_one_of_each(file_db, r, tmp_path):
    rng = random.Random(8)
    for symbol in SYMBOLS:
        make_instrument(symbol, tick="0.01", lot="0.5")
    accounts = [make_account(f"trader{i:02d}").pk for i in range(10)]
    for symbol in SYMBOLS:
        write_journal(r, symbol, random_commands(rng, COMMANDS_PER_SYMBOL, accounts))

    # --- two engines with disjoint symbols and two recorders, all at once --------------------
    processes = []
    for index, shard in enumerate(SHARDS):
        log = tmp_path / f"engine{index}.log"
        args = ["run_engine", "--symbols", ",".join(shard), "--batch-size", "16"]
        processes.append((start_manage(file_db, log, *args, "--exit-when-drained"), log))
    recorders = []
    for name in ("rec-1", "rec-2"):
        log = tmp_path / f"{name}.log"
        args = ["run_recorder", "--consumer", name, "--batch", "3"]
        recorders.append((start_manage(file_db, log, *args), log))
    try:
        engines = processes[:]
        processes += recorders
        wait_until(lambda: all(p.poll() == 0 for p, _ in engines), processes, 180, "the engines")
        written = {s: last_seq(r, s) for s in SYMBOLS}
        wait_until(lambda: recorded(written), processes, 180, "the recorders")
        wait_until(lambda: group_pending(r, SYMBOLS) == 0, processes, 60, "acknowledgements")
    finally:
        for process, _ in recorders:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in processes:
            try:
                process.wait(30)
            except Exception:  # pragma: no cover - reported by the asserts below
                process.kill()

    # Each engine served only its own symbols; both recorders took part.
    for (_, log), shard in zip(engines, SHARDS, strict=True):
        lines = [json.loads(line) for line in log.read_text().splitlines() if line[:1] == "{"]
        reports = [line for line in lines if "msg" not in line]  # the rest are its log lines
        assert sorted(report["symbol"] for report in reports) == shard
        assert all(report["commands"] == COMMANDS_PER_SYMBOL for report in reports)
    shares = []
    for process, log in recorders:
        assert process.returncode == 0, log.read_text()[-3000:]
        (stats,) = (line for line in log.read_text().splitlines() if line.startswith('{"recorder"'))
        shares.append(json.loads(stats)["entries"])
    entries = sum(r.xlen(keys.key("evt", s)) for s in SYMBOLS)
    assert all(share > 0 for share in shares) and sum(shares) == entries, (shares, entries)

    sharded_events = {s: stream_events(r, s) for s in SYMBOLS}
    sharded = dump()
    assert sum(len(events) for events in sharded_events.values()) > 4 * COMMANDS_PER_SYMBOL
    assert len(sharded["trades"]) > 100
    assert_engine_agrees(r, SYMBOLS)
    assert_conserved(SYMBOLS)

    # --- the same journals through one engine and one recorder ---------------------------------
    reset_projection(r, SYMBOLS)
    forget_the_engines(r)
    manage(
        file_db, "run_engine", "--symbols", ",".join(SYMBOLS), "--exit-when-drained", timeout=180
    )
    manage(file_db, "run_recorder", "--until-idle", "--consumer", "alone", timeout=180)

    assert {s: stream_events(r, s) for s in SYMBOLS} == sharded_events
    single = dump()
    assert comparable(single) == comparable(sharded)
    assert_engine_agrees(r, SYMBOLS)
