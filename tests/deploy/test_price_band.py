"""The price band (fat-finger protection) from the admin's field to the engine and back: a limit
order outside it is rejected naming the band, a market order trades no further than its edge, the
API shows it. A real engine process, the real Redis and database."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from exchange.models import Instrument
from exchange.orders.rules import OrderRequest
from exchange.protocol import keys
from tests.recorder.support import make_account, make_instrument, start_manage

from .test_listing import limit, served, stop, submit, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def band_set(instrument: Instrument, pct: str) -> None:
    """As the admin saves it: the engine gets the new band after the commit."""
    instrument.price_band_pct = Decimal(pct)
    instrument.save(update_fields=["price_band_pct"])


def test_limits_outside_the_band_are_rejected_and_market_orders_stop_at_its_edge(
    file_db, r, tmp_path
):
    acme = make_instrument(
        "ACME", served=False, reference_price=Decimal("100"), price_band_pct=Decimal("10")
    )  # 90.00 to 110.00 about 100
    alice, bob = make_account("alice"), make_account("bob")
    log = tmp_path / "engine.log"
    processes = [(start_manage(file_db, log, "run_engine"), log)]
    try:
        wait_until(lambda: served(r, "ACME"), processes, 30, "the engine to take ACME on")
        fat = submit(account=alice, request=limit("ACME", "buy", "110.01", "1"), wait=5)
        assert (fat.progress.status, fat.progress.reject_reason) == (
            "REJECTED",
            "PRICE_OUT_OF_BAND",
        )
        edge = submit(account=alice, request=limit("ACME", "sell", "110.00", "1"), wait=5)
        assert edge.progress.status == "NEW"

        # Liquidity beyond the band: resting under a wider band, which then narrows again.
        band_set(acme, "50")
        wait_until(lambda: book_band(r) == [5000, 15000], processes, 10, "the wider band")
        far = submit(account=alice, request=limit("ACME", "sell", "120.00", "5"), wait=5)
        assert far.progress.status == "NEW"
        band_set(acme, "10")
        wait_until(lambda: book_band(r) == [9000, 11000], processes, 10, "the band back at 10 %")

        sweep = submit(
            account=bob,
            request=OrderRequest(
                symbol="ACME", side="buy", quantity=Decimal("4"), order_type="market"
            ),
            wait=5,
        )
        progress = sweep.progress
        assert [(price, lots) for price, lots, _ in progress.fills] == [(11000, 1)]
        assert (progress.status, progress.reject_reason) == ("EXPIRED", "PRICE_BAND")

        # The API shows the band: the instrument's setting and the book's limits now (about the
        # last trade, 110.00: 99.00 to 121.00).
        api = APIClient()
        assert api.get("/api/v1/instruments/ACME/").json()["price_band_pct"] == "10"
        wait_until(lambda: book_band(r) == [9900, 12100], processes, 10, "the band's new centre")
        assert api.get("/api/v1/instruments/ACME/book/").json()["band"] == [
            "99.00",
            "121.00",
        ]  # to the tick
    finally:
        stop(processes)


def book_band(r) -> list[int] | None:
    """The band's limits in ticks, as the engine publishes them with the book."""
    raw = r.get(keys.key("book", "ACME"))
    return None if raw is None else json.loads(raw).get("band")
