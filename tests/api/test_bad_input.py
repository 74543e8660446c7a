"""Bad input gets a 400 in the error format — never a 500 — and nothing reaches the journal or
the database."""

import json

import pytest

from exchange.models import Order

from .support import LIMIT_BUY, assert_error, journal_length

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"


def without(field: str) -> dict:
    return {k: v for k, v in LIMIT_BUY.items() if k != field}


BAD_ORDERS = [
    # (body, code, field)
    ({**LIMIT_BUY, "price": "abc"}, "invalid", "price"),
    ({**LIMIT_BUY, "price": "NaN"}, "invalid", "price"),
    ({**LIMIT_BUY, "price": "Infinity"}, "invalid", "price"),
    ({**LIMIT_BUY, "price": "99.555"}, "invalid_price", "price"),  # off the 0.01 tick
    ({**LIMIT_BUY, "price": "0"}, "invalid_price", "price"),
    ({**LIMIT_BUY, "price": "-1.00"}, "invalid_price", "price"),
    ({**LIMIT_BUY, "price": "1e30"}, "invalid", "price"),  # no exponents
    ({**LIMIT_BUY, "price": "1e0"}, "invalid", "price"),
    ({**LIMIT_BUY, "price": " 99.50 "}, "invalid", "price"),  # no padding
    ({**LIMIT_BUY, "price": "99.5000000001"}, "max_decimal_places", "price"),
    ({**LIMIT_BUY, "post_only": "true"}, "invalid", "post_only"),  # a boolean, not a string
    ({**LIMIT_BUY, "wait": 1}, "invalid", "wait"),
    ({**LIMIT_BUY, "price": "12345678901234567.5"}, "max_whole_digits", "price"),
    ({**LIMIT_BUY, "price": "0.000000001"}, "max_decimal_places", "price"),
    ({**LIMIT_BUY, "price": [1]}, "invalid", "price"),
    (without("price"), "required", "price"),
    ({**LIMIT_BUY, "type": "market"}, "invalid_price", "price"),  # a market order has no price
    ({**LIMIT_BUY, "quantity": "0"}, "invalid_quantity", "quantity"),
    ({**LIMIT_BUY, "quantity": "-5"}, "invalid_quantity", "quantity"),
    ({**LIMIT_BUY, "quantity": "1.5"}, "invalid_quantity", "quantity"),  # not whole lots
    ({**LIMIT_BUY, "quantity": "10001"}, "invalid_quantity", "quantity"),  # above max
    ({**LIMIT_BUY, "quantity": "9" * 16}, "invalid_quantity", "quantity"),
    ({**LIMIT_BUY, "quantity": "9" * 40}, "max_digits", "quantity"),
    ({**LIMIT_BUY, "quantity": True}, "invalid", "quantity"),
    ({**LIMIT_BUY, "quantity": {"a": 1}}, "invalid", "quantity"),
    ({**LIMIT_BUY, "quantity": None}, "null", "quantity"),
    (without("quantity"), "required", "quantity"),
    ({**LIMIT_BUY, "symbol": "NOPE"}, "unknown_symbol", "symbol"),
    ({**LIMIT_BUY, "symbol": "Ä" * 10}, "unknown_symbol", "symbol"),
    ({**LIMIT_BUY, "symbol": "A" * 10_000}, "max_length", "symbol"),
    ({**LIMIT_BUY, "symbol": "AC\x00ME"}, "unknown_symbol", "symbol"),
    ({**LIMIT_BUY, "symbol": 12}, "unknown_symbol", "symbol"),
    ({**LIMIT_BUY, "symbol": ["ACME"]}, "invalid", "symbol"),
    (without("symbol"), "required", "symbol"),
    ({**LIMIT_BUY, "side": "long"}, "invalid_choice", "side"),
    ({**LIMIT_BUY, "side": "bUy😀"}, "invalid_choice", "side"),
    (without("side"), "required", "side"),
    ({**LIMIT_BUY, "type": "stop"}, "invalid_choice", "type"),
    ({**LIMIT_BUY, "time_in_force": "day"}, "invalid_choice", "time_in_force"),
    ({**LIMIT_BUY, "post_only": "perhaps"}, "invalid", "post_only"),
    ({**LIMIT_BUY, "post_only": True, "time_in_force": "ioc"}, "invalid_post_only", "post_only"),
    ({**LIMIT_BUY, "stp": "sometimes"}, "invalid_choice", "stp"),
    ({**LIMIT_BUY, "wait": "soon"}, "invalid", "wait"),
    ({**LIMIT_BUY, "client_order_id": "x" * 65}, "max_length", "client_order_id"),
    ({**LIMIT_BUY, "client_order_id": "ordre-été"}, "invalid_client_order_id", "client_order_id"),
    ({**LIMIT_BUY, "client_order_id": "tab\there"}, "invalid_client_order_id", "client_order_id"),
    ({**LIMIT_BUY, "client_order_id": ""}, "blank", "client_order_id"),
    ({**LIMIT_BUY, "leverage": 100}, "unknown_field", "leverage"),
    ({**LIMIT_BUY, "ü" * 500: 1}, "unknown_field", "ü" * 64),
]


@pytest.mark.parametrize(("body", "code", "field"), BAD_ORDERS)
def test_bad_orders_are_refused_and_nothing_is_written(
    api, instrument, redis_client, body, code, field
):
    before = journal_length(redis_client, "ACME")

    response = api.post(ORDERS, body, format="json")

    assert_error(response, 400, code, field)
    assert journal_length(redis_client, "ACME") == before == 0
    assert Order.objects.count() == 0


RAW_BODIES = [
    # (raw body, content type, status, code)
    (b"{", "application/json", 400, "parse_error"),
    (b"", "application/json", 400, "required"),
    (b"[]", "application/json", 400, "invalid"),
    (b'"just a string"', "application/json", 400, "invalid"),
    (b"null", "application/json", 400, "null"),
    (b'{"price": NaN}', "application/json", 400, "parse_error"),
    (b"\xff\xfe{}", "application/json", 400, "parse_error"),
    (b'{"symbol": "\\ud800"}', "application/json", 400, "parse_error"),
    (b'{"symbol": "A\\uDFFF"}', "application/json", 400, "parse_error"),
    (b'{"\\udc00": 1}', "application/json", 400, "parse_error"),
    (b'{"symbol": "\\ud83d\\ude00"}', "application/json", 400, "unknown_symbol"),  # a pair
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 413, "request_too_large"),
    (b"[" * 20_000 + b"]" * 20_000, "application/json", 400, "parse_error"),
    (b"symbol=ACME", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (b"{}", "application/json; charset=nonsense", 400, "required"),  # Django: utf-8
]


@pytest.mark.parametrize(("raw", "content_type", "status", "code"), RAW_BODIES)
def test_malformed_bodies_are_refused(
    api, instrument, redis_client, raw, content_type, status, code
):
    response = api.generic("POST", ORDERS, raw, content_type=content_type)

    assert_error(response, status, code)
    assert journal_length(redis_client, "ACME") == 0
    assert Order.objects.count() == 0


def test_json_numbers_are_refused_decimals_are_strings(api, instrument, redis_client):
    # A JSON number is a float to most clients by the time it is sent (99.95 may be
    # 99.9500000000000028...): the schema says strings, and the API holds to it.
    for body in ({**LIMIT_BUY, "price": 99.5}, {**LIMIT_BUY, "quantity": 10}):
        response = api.generic("POST", ORDERS, json.dumps(body), content_type="application/json")
        field = "price" if isinstance(body["price"], float) else "quantity"
        assert_error(response, 400, "invalid", field)
    assert journal_length(redis_client, "ACME") == 0


def test_error_messages_write_numbers_plainly(api, instrument):
    """A round number is written as people write it, never in exponent form ("1E+4")."""
    messages = [
        api.post(ORDERS, {**LIMIT_BUY, **change}, format="json").json()["error"]["message"]
        for change in ({"quantity": "10001"}, {"price": "99.555"}, {"quantity": "1.5"})
    ]
    assert messages == [
        "quantity must be between 1 and 10000.",
        "price must be a multiple of the tick size 0.01.",
        "quantity must be a whole number of lots of 1.",
    ]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/instruments/NOPE/", 404, "unknown_symbol"),
        ("/api/v1/instruments/%C3%84%C3%96/book/", 404, "unknown_symbol"),
        (f"/api/v1/instruments/{'X' * 5000}/trades/", 404, "unknown_symbol"),
        ("/api/v1/instruments/ACME/book/?depth=0", 400, "min_value"),
        ("/api/v1/instruments/ACME/book/?depth=many", 400, "invalid"),
        ("/api/v1/instruments/ACME/candles/?interval=7m", 400, "invalid_choice"),
        ("/api/v1/instruments/ACME/candles/?limit=100000", 400, "max_value"),
        ("/api/v1/instruments/ACME/trades/?cursor=%FF", 400, "invalid_cursor"),
        ("/api/v1/orders/?symbol=" + "Ü" * 100, 400, "max_length"),
        ("/api/v1/orders/?limit=abc", 400, "invalid"),
        ("/api/v1/orders/?limit=0", 400, "invalid"),
        ("/api/v1/account/fills/?limit=5000", 400, "invalid"),
        ("/api/v1/instruments/ACME/trades/?limit=-1", 400, "invalid"),
        ("/api/v1/orders/abc/", 404, "not_found"),
        ("/api/v1/no-such-thing/", 404, "not_found"),
    ],
)
def test_bad_urls_and_queries_answer_in_the_error_format(api, instrument, path, status, code):
    assert_error(api.get(path), status, code)


def test_a_crafted_cursor_is_refused(api, instrument):
    import base64

    cursor = base64.b64encode(b"p=abc&r=0").decode()
    assert_error(
        api.get("/api/v1/instruments/ACME/trades/", {"cursor": cursor}), 400, "invalid_cursor"
    )


def test_wrong_methods_answer_405_in_the_error_format(api):
    assert_error(api.delete(ORDERS), 405, "method_not_allowed")
    assert_error(api.put("/api/v1/account/", {}, format="json"), 405, "method_not_allowed")


def test_a_post_without_the_trailing_slash_places_the_order_never_a_redirect(api, instrument):
    # Clients follow a 301 as a GET: they would read the order list instead of placing an order.
    body = {"symbol": "ACME", "side": "buy", "price": "99.00", "quantity": "1"}
    response = api.post("/api/v1/orders", body, format="json")
    assert response.status_code in (201, 202), response.content
    assert response.json()["symbol"] == "ACME"
    # And the other way round: an action with a slash.
    order_id = response.json()["id"]
    assert api.post(f"/api/v1/orders/{order_id}/cancel/").status_code in (200, 202)
    assert api.get("/api/v1/account").status_code == 200


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_paths_answer_in_the_error_format_even_under_debug(api, settings, debug):
    settings.DEBUG = debug
    for path in ("/api/v1/no-such-thing/", "/api/v1/orders/1/explode", "/api/v2/"):
        assert_error(api.get(path), 404, "not_found")
    assert_error(api.delete("/api/v1/instruments/"), 405, "method_not_allowed")


def test_the_index_lists_the_endpoints_and_the_time_is_the_servers(api):
    import time

    body = api.get("/api/v1/").json()
    routes = {(e["method"], e["path"]) for e in body["endpoints"]}
    assert {
        ("POST", "/api/v1/orders/"),
        ("GET", "/api/v1/time/"),
        ("GET", "/api/v1/agents/"),
    } <= routes
    assert not any(p.endswith("/cancel/") or p == "/api/v1/orders" for _, p in routes)
    assert body["schema"] == "/api/v1/schema/"
    assert body["websocket"] == "/ws/v1/"
    now = api.get("/api/v1/time").json()
    assert abs(now["epoch_ms"] - time.time() * 1000) < 5_000
    assert now["server_time"].endswith("Z")


def test_cancel_all_names_a_listed_symbol(api, instrument):
    assert_error(
        api.post("/api/v1/orders/cancel-all", {"symbol": "NOPE"}, format="json"),
        404,
        "unknown_symbol",
    )
    response = api.post("/api/v1/orders/cancel-all", {"symbol": "ACME"}, format="json")
    assert response.status_code == 202 and response.json() == {"requested": 0}
