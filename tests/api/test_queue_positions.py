"""Queue positions through the real engine process: the worker publishes the queues of its best
levels beside the book (`{prefix}:queue:{SYM}`), and an order's detail (REST, and the WebSocket
API's `order.status`) and the order lists (`GET /orders/`, `orders.open`) say where each resting
order stands."""

import time

import pytest

from exchange.api import actions
from exchange.services import account_for_user

from .support import LIMIT_BUY, make_instrument

pytestmark = pytest.mark.django_db


def _place(client, side, price, quantity):
    body = {**LIMIT_BUY, "side": side, "price": price, "quantity": quantity, "wait": True}
    response = client.post("/api/v1/orders/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def _position_when(client, order_id, expected_ahead, quantity_ahead=None, timeout=5.0):
    """The order's queue position once the engine's published queues show `expected_ahead`
    orders (and `quantity_ahead`) ahead of it: they are written at most every 50 ms while busy,
    at once when idle."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/v1/orders/{order_id}/")
        assert response.status_code == 200
        position = response.json()["queue_position"]
        if position is not None and position["orders_ahead"] == expected_ahead:
            if quantity_ahead in (None, position["quantity_ahead"]):
                return position
        assert time.monotonic() < deadline, f"queue position still {position}"
        time.sleep(0.05)


def test_an_orders_detail_says_where_it_stands_in_its_queue(engine, api, bob_api, bob, staff_api):
    make_instrument()
    first = _place(api, "sell", "100.00", "5")
    second = _place(api, "sell", "100.00", "3")
    _place(api, "sell", "101.00", "9")
    mine = _place(bob_api, "sell", "100.00", "4")

    position = _position_when(bob_api, mine, 2)
    assert position["quantity_ahead"] == "8"
    assert (position["level_quantity"], position["level_orders"]) == ("12", 3)
    assert position["seq"] > 0
    assert _position_when(api, first, 0)["quantity_ahead"] == "0"

    # A cancel ahead of it and a fill at the head move it up.
    cancel = api.post(f"/api/v1/orders/{second}/cancel", {"wait": True}, format="json")
    assert cancel.status_code in (200, 202), cancel.json()
    _place(staff_api, "buy", "100.00", "2")  # takes 2 of the first order's 5
    position = _position_when(bob_api, mine, 1, "3")
    assert (position["level_quantity"], position["level_orders"]) == ("7", 2)

    # All of an account's open orders at once (the WebSocket API's `orders.open`).
    _, body = actions.open_orders(account_for_user(bob))
    (row,) = body["orders"]
    assert row["id"] == mine
    assert row["queue_position"]["orders_ahead"] == 1
    # And the REST list of orders.
    listed = bob_api.get("/api/v1/orders/?open=true").json()["results"]
    assert [(r["id"], r["queue_position"]["orders_ahead"]) for r in listed] == [(mine, 1)]
    every = api.get("/api/v1/orders/").json()["results"]
    assert {r["id"]: r["queue_position"] for r in every}[second] is None  # cancelled

    # An order no longer resting has none.
    _place(staff_api, "buy", "100.00", "7")  # fills the rest of the first order and all of mine
    deadline = time.monotonic() + 5
    while bob_api.get(f"/api/v1/orders/{mine}/").json()["queue_position"] is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
