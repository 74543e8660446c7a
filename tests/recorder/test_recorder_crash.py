"""The issue's crash test: kill -9 the recorder in the middle of ~100,000 events, restart it, and
the database equals the one a recorder that never stopped produces; positions sum to zero per
instrument and cash is conserved."""

import random
import time

import pytest

from exchange import journal

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


def test_kill_9_in_the_middle_and_restart_equals_a_recorder_that_never_stopped(
    file_db, r, tmp_path
):
    rng = random.Random(20241124)
    make_instrument("CRASH", tick="0.01", lot="1")
    make_instrument("BANG", tick="0.05", lot="0.5")
    accounts = [make_account(f"trader{i:02d}").pk for i in range(20)]
    for symbol in SYMBOLS:
        write_journal(r, symbol, random_commands(rng, 22_000, accounts))
    run_engine(file_db, SYMBOLS, batch_size=100)
    last = {s: int(r.xrevrange(journal.key("evt", s), count=1)[0][1][b"last"]) for s in SYMBOLS}
    total = sum(last.values())
    assert total > 95_000

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
    assert_conserved(SYMBOLS)
    assert_engine_agrees(r, SYMBOLS)
    assert len(restarted["trades"]) > 10_000

    # The same streams recorded again, from scratch, by a recorder that never stops.
    reset_projection(r, SYMBOLS)
    manage(file_db, "run_recorder", "--until-idle", "--consumer", "steady")
    assert cursor_total(file_db) == total
    assert dump() == restarted
