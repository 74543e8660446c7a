"""The immediate outcome of an order, from the real engine worker: `run_engine --symbols ACME`
as a subprocess on the test's Redis prefix (it needs no database when given the symbols)."""

from decimal import Decimal

import pytest

from exchange.orders import journal, rules

from .support import LIMIT_BUY, make_instrument

pytestmark = pytest.mark.django_db


def test_orders_get_the_engines_immediate_outcome(engine, api, bob_api):
    instrument = make_instrument(price_band_pct=Decimal("50"))
    # A market buy is valued at its price band's upper limit (buying power): the book needs one.
    journal.append("ACME", rules.rule_commands(instrument)[0])  # the BAND
    resting = api.post(
        "/api/v1/orders/",
        {**LIMIT_BUY, "side": "sell", "price": "100.00", "quantity": "5", "wait": True},
        format="json",
    )
    assert resting.status_code == 201, resting.json()
    assert resting.json()["status"] == "NEW"
    assert resting.json()["fills"] == []

    taker = bob_api.post(
        "/api/v1/orders/",
        {**LIMIT_BUY, "price": "101.00", "quantity": "3", "wait": True},
        format="json",
    )
    assert taker.status_code == 201, taker.json()
    body = taker.json()
    assert body["status"] == "FILLED"
    assert body["filled_quantity"] == "3"
    assert body["average_fill_price"] == "100.00"
    assert body["fills"] == [{"price": "100.00", "quantity": "3", "role": "taker"}]
    # Read-your-writes: the order is the owner's to see at once, whatever the recorder does.
    detail = bob_api.get(f"/api/v1/orders/{body['id']}/")
    assert detail.status_code == 200
    assert detail.json()["exchange_order_id"] == body["exchange_order_id"]

    # An IOC takes what there is (2 left at 100) and the rest expires.
    ioc = bob_api.post(
        "/api/v1/orders/",
        {**LIMIT_BUY, "price": "100.00", "quantity": "5", "time_in_force": "ioc", "wait": True},
        format="json",
    ).json()
    assert (ioc["status"], ioc["filled_quantity"]) == ("EXPIRED", "2")
    assert ioc["reject_reason"] == "REMAINDER"

    # Post-only that would cross is rejected with the engine's reason.
    api.post(
        "/api/v1/orders/",
        {**LIMIT_BUY, "side": "sell", "price": "100.00", "quantity": "1", "wait": True},
        format="json",
    )
    post_only = bob_api.post(
        "/api/v1/orders/",
        {**LIMIT_BUY, "price": "100.00", "quantity": "1", "post_only": True, "wait": True},
        format="json",
    )
    assert post_only.status_code == 201
    assert (post_only.json()["status"], post_only.json()["reject_reason"]) == (
        "REJECTED",
        "POST_ONLY_WOULD_CROSS",
    )

    # A GTC larger than the liquidity fills partly and rests.
    partial = bob_api.post(
        "/api/v1/orders/",
        {**LIMIT_BUY, "price": "100.00", "quantity": "10", "wait": True},
        format="json",
    ).json()
    assert (partial["status"], partial["filled_quantity"]) == ("PARTIALLY_FILLED", "1")
    assert partial["remaining_quantity"] == "9"

    # Market IOC with nothing on the other side: accepted, nothing fills, expired.
    market = api.post(
        "/api/v1/orders/",
        {"symbol": "ACME", "side": "buy", "type": "market", "quantity": "1"},
        format="json",
    ).json()
    assert (market["status"], market["filled_quantity"], market["price"]) == ("EXPIRED", "0", None)

    # wait=false answers at once, before the engine.
    quick = api.post("/api/v1/orders/", {**LIMIT_BUY, "price": "90.00"}, format="json")
    assert quick.status_code == 202
    assert quick.json()["status"] == "PENDING"
