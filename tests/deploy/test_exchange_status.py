"""`manage.py exchange_status` against the real engine worker, recorder and Redis: journal length,
engine lag, recorder lag and events/s as the pipeline moves, and its health-check modes."""

import json
import random
import time
from io import StringIO

import flashbook_engine
import pytest
from django.core.management import CommandError, call_command

from exchange import operations
from exchange.protocol import keys
from exchange.recorder import Recorder
from tests.recorder.support import (
    make_account,
    make_instrument,
    random_commands,
    run_engine,
    start_manage,
    stream_events,
    write_journal,
)

pytestmark = pytest.mark.django_db(transaction=True)


def status(*args: str) -> dict[str, dict]:
    out = StringIO()
    call_command("exchange_status", "--json", "--window", "120", *args, stdout=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    return {row["symbol"]: row for row in rows}


def table(*args: str) -> str:
    out = StringIO()
    call_command("exchange_status", *args, stdout=out)
    return out.getvalue()


def test_lags_and_rates_follow_the_pipeline(file_db, r):
    make_instrument("ACME", served=False)
    make_instrument("BETA", served=False)
    accounts = [make_account(f"t{i}").pk for i in range(6)]
    rng = random.Random(3)
    write_journal(r, "ACME", random_commands(rng, 300, accounts, specials=False))

    # Orders waiting, no engine yet.
    before = status()
    assert before["ACME"]["journal_length"] == 300
    assert (before["ACME"]["engine_seen"], before["ACME"]["engine_lag"]) == (False, 300)
    assert before["BETA"]["journal_length"] == before["BETA"]["engine_lag"] == 0
    assert "no engine" in table()
    with pytest.raises(CommandError, match="ACME: no engine has served it"):
        call_command("exchange_status", "--check", "--quiet")

    run_engine(file_db, ["ACME", "BETA"], batch_size=25)
    events = stream_events(r, "ACME")
    after = status()
    acme = after["ACME"]
    assert acme["engine_seen"] and acme["engine_lag"] == 0 and acme["engine_lag_ms"] == 0
    assert acme["engine_seq"] == acme["events_last_seq"] == events[-1].seq
    assert acme["engine_jid"] == acme["journal_last_id"]
    # Everything the engine wrote is in the last 120 s; nothing is recorded yet.
    assert acme["events_per_s"] == round(events[-1].seq / 120, 1) > 0
    assert acme["recorder_lag"] == events[-1].seq and acme["recorded_seq"] == 0
    assert after["BETA"]["engine_seen"] and after["BETA"]["events_per_s"] == 0
    call_command("exchange_status", "--check", "--quiet")  # both served, nothing waiting

    # New orders the engine has not seen: lag in entries and in age.
    write_journal(r, "ACME", random_commands(rng, 40, accounts, first_id=10_000, specials=False))
    time.sleep(0.3)
    waiting = status("--symbols", "ACME")
    assert list(waiting) == ["ACME"]
    assert waiting["ACME"]["engine_lag"] == 40 and waiting["ACME"]["engine_lag_ms"] >= 300
    with pytest.raises(CommandError, match=r"ACME: oldest unapplied command is \d+\.\d+s old"):
        call_command("exchange_status", "--check", "--quiet", "--max-engine-lag", "0.2")
    call_command("exchange_status", "--check", "--quiet", "--max-engine-lag", "600")

    run_engine(file_db, ["ACME"], batch_size=25)
    Recorder(["ACME", "BETA"], batch=4).run(until_idle=True)
    done = status()["ACME"]
    assert done["engine_lag"] == 0
    assert done["recorded_seq"] == done["events_last_seq"] and done["recorder_lag"] == 0
    assert done["recorder_pending"] == 0
    lines = table().splitlines()
    assert lines[0].split()[:3] == ["symbol", "journal", "engine"]
    assert lines[1].split()[:3] == ["ACME", "340", "0"] and lines[1].endswith("ok")


def test_a_large_engine_lag_is_counted_up_to_a_limit(file_db, r, monkeypatch):
    make_instrument("ACME", served=False)
    write_journal(r, "ACME", random_commands(random.Random(1), 120, [1, 2], specials=False))
    monkeypatch.setattr(operations, "LAG_COUNT_LIMIT", 50)
    row = status()["ACME"]
    assert (row["engine_lag"], row["engine_lag_capped"]) == (50, True)
    assert "50+" in table()
    monkeypatch.setattr(operations, "LAG_COUNT_LIMIT", 120)  # exactly all: not capped
    assert status()["ACME"]["engine_lag_capped"] is False


def test_check_recorder_sees_a_live_consumer(file_db, r, tmp_path):
    make_instrument("ACME", served=False)
    log = tmp_path / "recorder.log"
    process = start_manage(file_db, log, "run_recorder", "--consumer", "probe-1")
    try:
        deadline = time.monotonic() + 60
        while operations.consumer_idle_ms("probe-1") is None:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the recorder never joined the group"
            time.sleep(0.1)
        call_command("exchange_status", "--quiet", "--check-recorder", "probe-1")
        with pytest.raises(CommandError, match="no recorder 'someone-else'"):
            call_command("exchange_status", "--quiet", "--check-recorder", "someone-else")
        # It blocks on its reads for at most a second, so it never looks idle for long.
        time.sleep(3)
        assert operations.consumer_idle_ms("probe-1") < 3000
    finally:
        process.terminate()
        assert process.wait(15) == 0, log.read_text()[-3000:]
    # A clean stop leaves the group: the check then fails, as it should for a dead recorder.
    assert operations.consumer_idle_ms("probe-1") is None
    assert r.xinfo_groups(keys.key("evt", "ACME"))[0]["consumers"] == 0


def test_a_shard_narrows_to_the_instruments_its_engine_serves(file_db, r):
    symbols = ["ACME", "GLOBEX", "NEWCO", "ZETA"]
    for symbol in symbols:
        make_instrument(symbol, served=False)
    make_instrument("OFF", enabled=False, served=False)
    for shard in (1, 2):
        shown = set(status("--shard", f"{shard}/2"))
        assert shown == {s for s in symbols if flashbook_engine.symbol_shard(s, 2) == shard}
    assert set(status("--shard", "1/1")) == set(symbols)
    with pytest.raises(CommandError, match="the shard must be from 1 to 2"):
        call_command("exchange_status", "--shard", "3/2")
