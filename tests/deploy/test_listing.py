"""Instruments are live the moment they are listed (`exchange.listing`): the engine workers take a
newly enabled instrument on (one shard each, by its slot), the recorder, the bridge and the agents
runner follow it, all without a restart; an order for a symbol no engine serves is refused at
once; delisting cancels every resting order. Real processes, the real Redis and database."""

from __future__ import annotations

import signal
import subprocess
import time
from decimal import Decimal

import flashbook_engine
import pytest

from agents import keys as agent_keys
from agents.services import agent_config_ensure
from exchange.errors import InvalidInput, Unavailable
from exchange.models import Instrument, Order
from exchange.orders import gateway
from exchange.orders.rules import OrderRequest
from exchange.protocol import keys
from exchange.services import instrument_enabled_set
from tests.recorder.support import make_account, make_instrument, start_manage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

submit = gateway.blocking(gateway.order_submit)


def limit(symbol: str, side: str, price: str, quantity: str) -> OrderRequest:
    return OrderRequest(
        symbol=symbol, side=side, quantity=Decimal(quantity), price=Decimal(price), stp="none"
    )


def wait_until(condition, processes, timeout: float, what: str) -> float:
    """Seconds until `condition()` holds; fails (with the logs) if a process died or time is up."""
    started = time.monotonic()
    while not condition():
        for process, log in processes:
            assert process.poll() is None, f"{log.name} exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def stop(processes) -> None:
    for process, _ in processes:
        process.send_signal(signal.SIGTERM)
    for process, _ in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def served(r, symbol: str) -> bool:
    return bool(r.exists(keys.key("status", symbol)))


def events(r, symbol: str) -> list:
    entries = r.xrange(keys.key("evt", symbol))
    return [e for _, f in entries for e in flashbook_engine.decode_events(f[b"e"].decode())]


def test_an_order_for_a_symbol_no_engine_serves_is_refused_at_once_and_writes_nothing(file_db, r):
    make_instrument("NEWCO", served=False)
    alice = make_account("alice")
    with pytest.raises(Unavailable) as refused:
        submit(account=alice, request=limit("NEWCO", "buy", "100", "1"), wait=5)
    assert (refused.value.code, refused.value.field) == ("instrument_not_served", "symbol")
    assert "NEWCO" in refused.value.message
    assert r.xlen(keys.key("cmd", "NEWCO")) == 0  # never left PENDING in a journal nobody reads
    assert r.hlen(keys.pending_key(alice.pk)) == 0
    assert not Order.objects.exists()


def test_an_instrument_listed_while_the_engine_runs_trades_at_once(file_db, r, tmp_path):
    make_instrument("ACME", served=False)
    alice, bob = make_account("alice"), make_account("bob")
    log = tmp_path / "engine.log"
    processes = [(start_manage(file_db, log, "run_engine"), log)]  # every shard: 1/1
    try:
        wait_until(lambda: served(r, "ACME"), processes, 30, "the engine to take ACME on")
        # Listed in the admin's way: a saved instrument (the registry follows on commit).
        make_instrument("NEWCO", served=False, reference_price=Decimal("100"))
        took = wait_until(lambda: served(r, "NEWCO"), processes, 10, "the engine to take NEWCO on")
        print(f"NEWCO served {took:.2f} s after it was listed")
        resting = submit(account=alice, request=limit("NEWCO", "sell", "100.00", "5"), wait=5)
        assert resting.progress is not None and resting.progress.status == "NEW"
        taker = submit(account=bob, request=limit("NEWCO", "buy", "100.00", "2"), wait=5)
        assert taker.progress.status == "FILLED" and taker.progress.filled_lots == 2
        assert "NEWCO" in log.read_text()  # it says which symbols it took on
    finally:
        stop(processes)


def test_each_listed_instrument_is_served_by_the_one_shard_its_slot_gives(file_db, r, tmp_path):
    symbols = ["ACME", "GLOBEX", "NEWCO", "ZETA", "BETA", "OMEGA"]
    for symbol in symbols[:2]:
        make_instrument(symbol, served=False)
    processes = []
    for shard in (1, 2):
        log = tmp_path / f"engine{shard}.log"
        processes.append((start_manage(file_db, log, "run_engine", "--shard", f"{shard}/2"), log))
    try:
        for symbol in symbols[2:]:  # listed while both run
            make_instrument(symbol, served=False)
        for symbol in symbols:
            wait_until(lambda s=symbol: served(r, s), processes, 20, f"an engine to serve {symbol}")
        owners = {s: int(r.hget(keys.key("status", s), "pid")) for s in symbols}
        pids = [process.pid for process, _ in processes]
        expected = {s: pids[flashbook_engine.symbol_shard(s, 2) - 1] for s in symbols}
        assert owners == expected
        assert set(owners.values()) == set(pids)  # both shards have work here
    finally:
        stop(processes)


def test_delisting_cancels_every_resting_order_and_listing_again_reopens(file_db, r, tmp_path):
    acme = make_instrument("ACME", served=False)
    alice = make_account("alice")
    log = tmp_path / "engine.log"
    processes = [(start_manage(file_db, log, "run_engine"), log)]
    try:
        wait_until(lambda: served(r, "ACME"), processes, 30, "the engine to take ACME on")
        placed = [
            submit(account=alice, request=limit("ACME", side, price, "3"), wait=5)
            for side, price in (("buy", "99.00"), ("buy", "98.50"), ("sell", "101.00"))
        ]
        assert [p.progress.status for p in placed] == ["NEW"] * 3
        ids = {p.order_id for p in placed}

        instrument_enabled_set(instrument=acme, enabled=False)
        assert not Instrument.objects.get(symbol="ACME").enabled
        with pytest.raises(InvalidInput) as refused:
            submit(account=alice, request=limit("ACME", "buy", "99.00", "1"))
        assert refused.value.code == "instrument_disabled"

        def cancelled() -> dict:
            return {e.order_id: e.reason for e in events(r, "ACME") if e.kind == "cancelled"}

        wait_until(lambda: set(cancelled()) == ids, processes, 10, "the resting orders' cancels")
        assert set(cancelled().values()) == {"RESET"}
        statuses = [e.status for e in events(r, "ACME") if e.kind == "status"]
        assert statuses == ["HALTED", "RESET"]  # halted first: nothing can rest after the reset

        instrument_enabled_set(instrument=acme, enabled=True)
        wait_until(
            lambda: [e.status for e in events(r, "ACME") if e.kind == "status"][-1] == "RESUMED",
            processes,
            10,
            "the book to resume",
        )
        again = submit(account=alice, request=limit("ACME", "buy", "99.00", "1"), wait=5)
        assert again.progress.status == "NEW"
    finally:
        stop(processes)


def test_the_recorder_bridge_and_agents_take_a_listed_instrument_on(file_db, r, tmp_path):
    make_instrument("ACME", served=False)
    newco = make_instrument("NEWCO", enabled=False, served=False, reference_price=Decimal("100"))
    for number in range(2):  # configured while delisted: they wait for the listing
        agent_config_ensure(
            name=f"newco-noise-{number}",
            strategy="noise",
            symbol="NEWCO",
            params={},
            wake_rate_hz=20.0,
            max_position=Decimal("1000"),
        )
    processes = []
    for role in ("run_engine", "run_recorder", "run_bridge", "run_agents"):
        log = tmp_path / f"{role}.log"
        processes.append((start_manage(file_db, log, role), log))
    try:
        wait_until(lambda: served(r, "ACME"), processes, 30, "the engine to take ACME on")
        wait_until(lambda: r.hlen(agent_keys.runners()), processes, 30, "the runner")
        instrument_enabled_set(instrument=newco, enabled=True)
        wait_until(lambda: served(r, "NEWCO"), processes, 10, "the engine to take NEWCO on")
        wait_until(
            lambda: r.exists(keys.key("ws", "NEWCO")), processes, 10, "the bridge's snapshot"
        )
        wait_until(
            lambda: (
                Order.objects.filter(instrument=newco, client_order_id__isnull=False).count() >= 5
            ),
            processes,
            20,
            "the agents' orders, recorded",
        )
    finally:
        stop(processes)
