"""The volatility pause from the admin's fields to the engine and back: a move beyond the guard
pauses the book (new orders and replaces refused naming the pause, cancels allowed), the book key
and the API say until when, and the pause ends on its own — on a journal nobody writes to, by the
engine's clock tick — after which orders trade again. A real engine process, the real Redis and
database."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from exchange.models import Instrument
from exchange.orders.gateway import blocking, order_cancel_all
from exchange.protocol import keys
from tests.recorder.support import make_account, make_instrument, start_manage

from .test_listing import events, limit, served, stop, submit, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def guard_set(instrument: Instrument, *, move_pct: str, window_s: int, pause_s: int) -> None:
    """As the admin saves it: the engine gets the new guard after the commit."""
    instrument.volatility_move_pct = Decimal(move_pct)
    instrument.volatility_window_seconds = window_s
    instrument.volatility_pause_seconds = pause_s
    instrument.save(
        update_fields=[
            "volatility_move_pct",
            "volatility_window_seconds",
            "volatility_pause_seconds",
        ]
    )


def book_key(r) -> dict:
    raw = r.get(keys.key("book", "ACME"))
    return {} if raw is None else json.loads(raw)


def test_a_fast_move_pauses_the_book_which_reopens_by_itself(file_db, r, tmp_path):
    acme = make_instrument("ACME", served=False, reference_price=Decimal("100"))
    alice, bob = make_account("alice"), make_account("bob")
    log = tmp_path / "engine.log"
    processes = [(start_manage(file_db, log, "run_engine"), log)]
    try:
        wait_until(lambda: served(r, "ACME"), processes, 30, "the engine to take ACME on")
        guard_set(acme, move_pct="5", window_s=60, pause_s=2)
        wait_until(
            lambda: r.xlen(keys.key("evt", "ACME")) > 0, processes, 10, "the guard to arrive"
        )
        # A trade at 100, a bid resting at 95, then a trade at 106: 6 % within the minute.
        assert submit(account=alice, request=limit("ACME", "sell", "100", "1")).order_id
        first = submit(account=bob, request=limit("ACME", "buy", "100", "1"), wait=5)
        assert first.progress.status == "FILLED"
        resting = submit(account=alice, request=limit("ACME", "buy", "95", "1"), wait=5)
        assert resting.progress.status == "NEW"
        submit(account=alice, request=limit("ACME", "sell", "106", "1"), wait=5)
        jump = submit(account=bob, request=limit("ACME", "buy", "106", "1"), wait=5)
        assert jump.progress.status == "FILLED", "the command that moved the price completes"
        wait_until(lambda: book_key(r).get("paused_until") is not None, processes, 5, "the pause")

        refused = submit(account=bob, request=limit("ACME", "buy", "99", "1"), wait=5)
        assert (refused.progress.status, refused.progress.reject_reason) == (
            "REJECTED",
            "VOLATILITY_PAUSE",
        )
        api = APIClient()
        assert api.get("/api/v1/instruments/ACME/book/").json()["paused_until"] is not None
        assert api.get("/api/v1/instruments/ACME/").json()["volatility_move_pct"] == "5"
        # Cancels work during the pause.
        # (No recorder runs here: the journal still lists her filled orders too.)
        assert blocking(order_cancel_all)(account=alice, symbol="ACME") >= 1
        wait_until(
            lambda: any(
                e.kind == "cancelled" and e.order_id == resting.order_id and e.reason == "USER"
                for e in events(r, "ACME")
            ),
            processes,
            5,
            "the cancel during the pause",
        )

        # The pause ends by itself within its 2 s (plus the clock tick's second at most), with no
        # order to carry the time: the engine's idle clock tick does it.
        started = time.monotonic()
        wait_until(
            lambda: book_key(r).get("paused_until") is None, processes, 6, "the pause to end"
        )
        assert time.monotonic() - started < 6
        statuses = [e.status for e in events(r, "ACME") if e.kind == "status"]
        assert statuses[-2:] == ["PAUSED", "PAUSE_ENDED"]
        assert api.get("/api/v1/instruments/ACME/book/").json()["paused_until"] is None

        # Open again: an order rests.
        again = submit(account=bob, request=limit("ACME", "buy", "99", "1"), wait=5)
        assert again.progress.status == "NEW"
    finally:
        stop(processes)
