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


def test_cancel_and_replace_wait_for_the_engines_answer(engine, api, bob_api):
    instrument = make_instrument(price_band_pct=Decimal("10"))
    journal.append("ACME", rules.rule_commands(instrument)[0])  # the BAND around 100
    orders = "/api/v1/orders/"
    sell = {**LIMIT_BUY, "side": "sell", "price": "101.00", "quantity": "5", "wait": True}
    resting = bob_api.post(orders, sell, format="json").json()
    buy = {**LIMIT_BUY, "price": "99.00", "quantity": "4", "wait": True}
    buy = api.post(orders, buy, format="json").json()
    assert (resting["status"], buy["status"]) == ("NEW", "NEW")

    # A replace to a price that crosses: the answer has the new price and the fills it made.
    crossed = api.post(f"{orders}{buy['id']}/replace", {"price": "101.00"}, format="json")
    assert crossed.status_code == 200, crossed.json()
    body = crossed.json()
    assert (body["status"], body["price"], body["filled_quantity"]) == ("FILLED", "101.00", "4")
    assert body["fills"] == [{"price": "101.00", "quantity": "4", "role": "taker"}]
    assert body["average_fill_price"] == "101.00"

    # A replace the engine refuses: its reason as the code, in words; the order unchanged.
    outside = bob_api.post(f"{orders}{resting['id']}/replace", {"price": "150.00"}, format="json")
    assert outside.status_code == 409, outside.json()
    error = outside.json()["error"]
    assert error["code"] == "price_out_of_band"
    assert error["message"] == "The price is outside the instrument's price band."
    # A smaller quantity at the same price keeps the order resting.
    smaller = bob_api.post(f"{orders}{resting['id']}/replace", {"quantity": "0.5"}, format="json")
    assert smaller.status_code == 400  # not whole lots: refused before the engine
    smaller = bob_api.post(f"{orders}{resting['id']}/replace", {"quantity": "1"}, format="json")
    assert smaller.status_code == 200
    # The remaining quantity is the engine's; the fills before it are those recorded (no
    # recorder runs here, so none).
    assert smaller.json()["status"] in ("NEW", "PARTIALLY_FILLED")
    assert smaller.json()["remaining_quantity"] == "1"

    # Cancel: CANCELED; a second cancel of it answers that it is no longer open.
    cancel = bob_api.post(f"{orders}{resting['id']}/cancel", {}, format="json")
    assert cancel.status_code == 200, cancel.json()
    assert cancel.json()["status"] == "CANCELED"
    again = bob_api.post(f"{orders}{resting['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "order_not_open"
    # wait=false answers at once, as before.
    late = {**LIMIT_BUY, "price": "99.00", "quantity": "1"}
    late = api.post(orders, late, format="json").json()
    quick = api.post(f"{orders}{late['id']}/cancel", {"wait": False}, format="json")
    assert quick.status_code == 202 and quick.json()["status"] in ("PENDING", "NEW")
    bad = api.post(f"{orders}{late['id']}/cancel", {"wait": "yes"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "wait"
