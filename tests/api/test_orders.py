"""Orders through the API without an engine: placement answers 202, read-your-writes, idempotent
client order ids, ownership, cancel / replace / cancel all, filters, pagination, throttling."""

import pytest
from django.conf import settings
from django.urls import reverse

from exchange.models import Order, OrderStatus
from exchange.services import account_for_user

from .support import (
    LIMIT_BUY,
    assert_error,
    journal_entries,
    journal_length,
    make_instrument,
    record,
)

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"


def place(client, **overrides):
    return client.post(ORDERS, {**LIMIT_BUY, **overrides}, format="json")


def test_an_order_is_journaled_and_visible_at_once(api, instrument, redis_client):
    response = place(api, client_order_id="my-1")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["exchange_order_id"] == 1
    assert (body["price"], body["quantity"], body["filled_quantity"]) == ("99.50", "10", "0")
    assert body["client_order_id"] == "my-1"
    assert body["id"] == body["exchange_order_id"]
    [entry] = journal_entries(redis_client, "ACME")
    assert entry["t"] == "new"
    assert (entry["px"], entry["qty"], entry["side"]) == ("9950", "10", "buy")
    assert (entry["id"], entry["coid"]) == ("1", "my-1")  # every field its row needs

    # The journal is the order's only write: the recorder writes the row (none runs here); until
    # then its owner reads it from the journal's record.
    assert not Order.objects.exists()
    listed = api.get(ORDERS).json()["results"]
    assert [(o["id"], o["exchange_order_id"]) for o in listed] == [(body["id"], 1)]
    detail = api.get(f"{ORDERS}{body['id']}/")
    assert detail.status_code == 200
    assert detail.json()["fills"] == []
    assert detail.json()["exchange_order_id"] == 1


def test_waiting_for_an_engine_that_does_not_answer_ends_in_202(api, instrument, settings):
    settings.FLASHBOOK_ORDER_WAIT = 0.1
    response = place(api, wait=True)
    assert response.status_code == 202
    assert response.json()["status"] == "PENDING"


def test_a_retry_with_the_same_client_order_id_returns_the_same_order(
    api, instrument, redis_client
):
    first = place(api, client_order_id="retry-me")
    second = place(api, client_order_id="retry-me")

    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json() == {**first.json(), "fills": []}
    assert journal_length(redis_client, "ACME") == 1


def test_a_retry_after_the_order_is_recorded_returns_the_recorded_order(
    api, alice, instrument, redis_client
):
    first = place(api, client_order_id="retry-later").json()
    record(account_for_user(alice), first["id"], status=OrderStatus.NEW)
    # A day later the journal's index of client order ids has let it go: the database answers.
    keys = redis_client.keys("*:pending:*")
    redis_client.delete(*keys)
    second = place(api, client_order_id="retry-later")
    assert second.status_code == 200
    assert (second.json()["id"], second.json()["status"]) == (first["id"], "NEW")
    assert journal_length(redis_client, "ACME") == 1


def test_client_order_ids_are_per_account(api, bob_api, instrument, redis_client):
    assert place(api, client_order_id="same").status_code == 202
    assert place(bob_api, client_order_id="same").status_code == 202
    assert journal_length(redis_client, "ACME") == 2


def test_users_see_only_their_own_orders(api, bob_api, instrument, redis_client):
    mine = place(api).json()
    place(bob_api)

    assert [o["id"] for o in api.get(ORDERS).json()["results"]] == [mine["id"]]
    length = journal_length(redis_client, "ACME")
    for response in (
        bob_api.get(f"{ORDERS}{mine['id']}/"),
        bob_api.post(f"{ORDERS}{mine['id']}/cancel"),
        bob_api.post(f"{ORDERS}{mine['id']}/replace", {"price": "99"}, format="json"),
    ):
        assert_error(response, 404, "unknown_order")
    # ... with the same answer as for an order that does not exist at all.
    assert_error(bob_api.get(f"{ORDERS}999999/"), 404, "unknown_order")
    assert_error(bob_api.get(f"{ORDERS}{10**30}/"), 404, "unknown_order")
    assert journal_length(redis_client, "ACME") == length


def test_cancel_replace_and_cancel_all_send_commands(api, alice, instrument, redis_client):
    account = account_for_user(alice)
    order = place(api).json()

    # No engine answers here: the one that waits (by default) ends in 202 too.
    cancel = api.post(f"{ORDERS}{order['id']}/cancel")
    assert cancel.status_code == 202
    assert cancel.json()["id"] == order["id"]
    replace = api.post(
        f"{ORDERS}{order['id']}/replace",
        {"price": "99.60", "quantity": "4", "wait": False},
        format="json",
    )
    assert replace.status_code == 202

    entries = journal_entries(redis_client, "ACME")
    acct = entries[0]["acct"]
    # A command that waits names the gateway's reply list; one that does not, none.
    assert entries[1].pop("reply").startswith(f"{settings.FLASHBOOK_REDIS_PREFIX}:reply:")
    assert entries[1] == {"t": "cancel", "id": "1", "acct": acct}
    assert entries[2] == {"t": "replace", "id": "1", "acct": acct, "px": "9960", "qty": "4"}

    # Cancel-all sends a cancel per open order: recorded, or only in the journal yet.
    second = place(api).json()
    record(account, order["id"], status=OrderStatus.NEW)
    everything = api.post(f"{ORDERS}cancel-all", {}, format="json")
    assert everything.status_code == 202
    assert everything.json() == {"requested": 2}
    cancels = [e["id"] for e in journal_entries(redis_client, "ACME") if e["t"] == "cancel"]
    assert sorted(cancels[-2:]) == sorted([str(order["id"]), str(second["id"])])
    make_instrument("OTHER")
    elsewhere = api.post(f"{ORDERS}cancel-all", {"symbol": "OTHER"}, format="json")
    assert elsewhere.json() == {"requested": 0}
    assert journal_entries(redis_client, "ACME")[-1]["t"] == "cancel"


def test_a_finished_order_cannot_be_cancelled(api, alice, instrument):
    order = place(api).json()
    record(account_for_user(alice), order["id"], status=OrderStatus.FILLED)
    assert_error(api.post(f"{ORDERS}{order['id']}/cancel"), 409, "order_not_open")


def test_replace_validates_its_input(api, instrument, redis_client):
    order = place(api).json()
    length = journal_length(redis_client, "ACME")
    assert_error(api.post(f"{ORDERS}{order['id']}/replace", {}, format="json"), 400, "required")
    assert_error(
        api.post(f"{ORDERS}{order['id']}/replace", {"price": "99.555"}, format="json"),
        400,
        "invalid_price",
        "price",
    )
    assert_error(
        api.post(f"{ORDERS}{order['id']}/replace", {"quantity": "-1"}, format="json"),
        400,
        "invalid_quantity",
        "quantity",
    )
    assert_error(
        api.post(f"{ORDERS}{order['id']}/replace", {"size": "1"}, format="json"),
        400,
        "unknown_field",
        "size",
    )
    assert journal_length(redis_client, "ACME") == length


def test_orders_filter_by_symbol_and_status(api, alice, instrument):
    make_instrument("GLOBEX")
    acme = place(api).json()
    globex = place(api, symbol="GLOBEX").json()
    record(account_for_user(alice), globex["id"], status=OrderStatus.FILLED)

    def ids(query):
        response = api.get(ORDERS, query)
        assert response.status_code == 200, response.json()
        return [o["id"] for o in response.json()["results"]]

    assert ids({"symbol": "ACME"}) == [acme["id"]]
    assert ids({"symbol": "GLOBEX"}) == [globex["id"]]
    assert ids({"status": "FILLED"}) == [globex["id"]]
    assert ids({"open": "true"}) == [acme["id"]]
    assert ids({}) == [globex["id"], acme["id"]]
    assert_error(api.get(ORDERS, {"status": "SLEEPING"}), 400, "invalid_choice", "status")


def test_order_lists_are_paginated_with_a_cursor(api, alice, instrument):
    ids = [place(api).json()["id"] for _ in range(7)]
    account = account_for_user(alice)
    for order_id in ids[1::2]:  # recorded and not recorded yet, interleaved
        record(account, order_id, status=OrderStatus.NEW)

    page = api.get(ORDERS, {"limit": 2}).json()
    pages = [[o["id"] for o in page["results"]]]
    while page["next"]:
        page = api.get(page["next"]).json()
        pages.append([o["id"] for o in page["results"]])
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [i for p in pages for i in p] == ids[::-1]
    assert_error(api.get(ORDERS, {"cursor": "garbage"}), 400, "invalid_cursor", "cursor")


def test_order_entry_is_throttled_per_user(api, bob_api, instrument, settings, redis_prefix):
    settings.FLASHBOOK_ORDER_RATE = "3/min"
    for left in (2, 1, 0):
        response = place(api)
        assert response.status_code == 202
        # The allowance is announced with every order write.
        assert (response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"]) == (
            "3",
            str(left),
        )
        assert 1 <= int(response["X-RateLimit-Reset"]) <= 61
    refused = place(api)
    assert refused["X-RateLimit-Remaining"] == "0"
    error = assert_error(refused, 429, "throttled")
    assert "throttled" in error["message"].lower()
    response = api.post(f"{ORDERS}cancel-all", {}, format="json")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    # Reads are not throttled (nor counted), and the limit is per user.
    read = api.get(ORDERS)
    assert read.status_code == 200 and "X-RateLimit-Limit" not in read
    assert place(bob_api).status_code == 202


def test_the_throttle_counts_in_redis(api, instrument, settings, redis_client, redis_prefix):
    settings.FLASHBOOK_ORDER_RATE = "100/min"
    place(api)
    place(api)
    keys = redis_client.keys(f"{redis_prefix}:throttle:orders:*")
    assert len(keys) == 1
    assert redis_client.get(keys[0]) == "2"


def test_halted_instruments_refuse_orders(api, instrument, redis_client):
    instrument.halted = True
    instrument.save()
    assert_error(place(api), 409, "instrument_halted", "symbol")
    assert journal_length(redis_client, "ACME") == 0


def test_an_inactive_account_cannot_trade(api, alice, instrument):
    from exchange.services import account_for_user

    account = account_for_user(alice)
    account.active = False
    account.save()
    assert_error(place(api), 403, "account_inactive")


def test_urls_are_named():
    assert reverse("api:order-cancel", args=[1]) == "/api/v1/orders/1/cancel"
    assert reverse("api:order-cancel-all") == "/api/v1/orders/cancel-all"


def test_an_order_is_found_by_its_client_order_id_before_and_after_it_is_recorded(
    api, bob_api, alice, instrument
):
    from exchange.services import account_for_user

    placed = place(api, client_order_id="find-me").json()
    found = api.get(f"{ORDERS}by-client-id/find-me/")  # the journal's record: not yet recorded
    assert found.status_code == 200, found.content
    assert (found.json()["id"], found.json()["status"]) == (placed["id"], "PENDING")
    assert_error(bob_api.get(f"{ORDERS}by-client-id/find-me/"), 404, "unknown_order")
    assert_error(api.get(f"{ORDERS}by-client-id/nobody/"), 404, "unknown_order")
    # Recorded (the journal's record gone): found in the database.
    record(account_for_user(alice), placed["id"], status="NEW")
    found = api.get(f"{ORDERS}by-client-id/find-me")
    assert (found.status_code, found.json()["status"]) == (200, "NEW")
