"""Order entry for programs (`exchange/api/order_entry.py`) in the real server: uvicorn serving
`flashbook_site.asgi:application`, the engine worker, a Redis prefix of this module's own (no
recorder: every order is read back from the journal's records); on an SQLite file, and on a fresh
PostgreSQL database when one answers at `TEST_POSTGRES_URL`. Answers are checked against what
Django answers for the same order, every refusal against the journal and the database, which must
be left untouched, and the throttle for counting each request once."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import flashbook_engine
import pytest
import redis
from django.contrib.auth import get_user_model

from exchange.models import Order
from exchange.services import api_token_create, api_token_revoke
from tests.live_stack import live_stack, wait_until

from .support import make_instrument

ROOT = Path(__file__).resolve().parents[2]
RATE_PER_MIN = 40
ORDER = {"symbol": "ACME", "side": "buy", "type": "limit", "price": "99.50", "quantity": "2"}
VOLATILE = {"id", "exchange_order_id", "client_order_id", "created_at", "updated_at"}


def _stable(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k not in ("date", "content-length")}


class Stack:
    def __init__(self, port: int, prefix: str, redis_url: str):
        self.port, self.prefix = port, prefix
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)

    def post(self, body, token: str | None, *, path="/api/v1/orders/", headers=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        conn.request("POST", path, body=raw if raw is not None else json.dumps(body), headers=sent)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def get(self, path: str, token: str):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, json.loads(data)

    def journal_length(self) -> int:
        return self.redis.xlen(f"{self.prefix}:cmd:{{ACME}}")


def _user_token(name: str) -> str:
    user = get_user_model().objects.create_user(username=f"{name}-{uuid.uuid4().hex[:6]}")
    return api_token_create(user=user, name="tests")[1]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, tmp_path_factory, django_db_setup, django_db_blocker):
    env = {"FLASHBOOK_ORDER_RATE": f"{RATE_PER_MIN}/min", "FLASHBOOK_ORDER_WAIT": "5"}
    folder = tmp_path_factory.mktemp("order-entry")
    with (
        django_db_blocker.unblock(),
        # The engine takes the instrument on.
        live_stack(
            request.param, folder, ["engine"], env, lambda: make_instrument(served=False)
        ) as running,
    ):
        yield Stack(running.port, running.prefix, running.redis_url)


def test_order_entry_answers_as_django_does(stack):
    """The order's body is what Django's detail view gives for it, and the headers those of
    Django's middleware."""
    token = _user_token("parity")
    status, headers, body = stack.post({**ORDER, "wait": False}, token)
    assert status == 202, body
    placed = json.loads(body)
    assert placed["status"] == "PENDING" and placed["exchange_order_id"] == placed["id"]
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=20)
    conn.request("GET", "/api/v1/orders/", headers={"Authorization": f"Bearer {token}"})
    listing = conn.getresponse()
    listing.read()
    django_headers = {k.lower(): v for k, v in listing.getheaders()}
    conn.close()
    for name in (
        "content-type",
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
        "cross-origin-opener-policy",
        "allow",
    ):
        assert headers.get(name) == django_headers.get(name), name
    detail_status, detail = stack.get(f"/api/v1/orders/{placed['id']}/", token)
    assert detail_status == 200
    # The detail adds the order's place in its queue (the engine's, once it rests).
    assert "queue_position" in detail
    assert {k: v for k, v in detail.items() if k != "queue_position"} == placed


def test_an_accepted_order_is_at_once_readable_with_its_exchange_id(stack):
    token = _user_token("ryw")
    status, _, body = stack.post({**ORDER, "wait": True}, token)
    assert status == 201, body
    placed = json.loads(body)
    assert placed["status"] == "NEW" and placed["exchange_order_id"] > 0
    status, detail = stack.get(f"/api/v1/orders/{placed['id']}/", token)
    assert status == 200
    assert detail["exchange_order_id"] == placed["exchange_order_id"]
    status, listed = stack.get("/api/v1/orders/", token)
    assert [o["id"] for o in listed["results"]] == [placed["id"]]


def test_a_crossing_order_reports_its_fills(stack):
    seller, buyer = _user_token("seller"), _user_token("buyer")
    assert (
        stack.post({**ORDER, "side": "sell", "price": "101.00", "quantity": "3"}, seller)[0] == 201
    )
    status, _, body = stack.post({**ORDER, "price": "101.00", "quantity": "5"}, buyer)
    taken = json.loads(body)
    assert status == 201 and taken["status"] == "PARTIALLY_FILLED", taken
    assert taken["filled_quantity"] == "3" and taken["average_fill_price"] == "101.00"
    assert taken["fills"] == [{"price": "101.00", "quantity": "3", "role": "taker"}]


BAD = [
    ({**ORDER, "price": "99.505"}, 400, "invalid_price"),
    ({**ORDER, "quantity": "0"}, 400, "invalid_quantity"),
    ({**ORDER, "quantity": "1.5"}, 400, "invalid_quantity"),
    ({**ORDER, "symbol": "NOPE"}, 400, "unknown_symbol"),
    ({**ORDER, "colour": "red"}, 400, "unknown_field"),
    ({**ORDER, "side": "up"}, 400, "invalid_choice"),
    ({**ORDER, "client_order_id": "é" * 10}, 400, None),
    ({**ORDER, "type": "market"}, 400, "invalid_price"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD)
def test_bad_input_is_refused_in_the_error_format_and_writes_nothing(stack, body, status, code):
    token = _user_token("bad")
    before, orders_before = stack.journal_length(), Order.objects.count()
    answer = stack.post(body, token)
    assert answer[0] == status, answer
    error = json.loads(answer[2])["error"]
    assert set(error) == {"status", "code", "field", "message"}
    if code:
        assert error["code"] == code, error
    assert stack.journal_length() == before
    assert Order.objects.count() == orders_before


def test_broken_requests_get_the_error_format(stack):
    token = _user_token("broken")
    before = stack.journal_length()
    cases = [
        (stack.post(None, token, raw=b"{not json"), 400),
        (stack.post(None, token, raw=b'{"a": NaN}'), 400),
        (stack.post(ORDER, token, headers={"Content-Type": "text/plain"}), 415),
        (stack.post(None, token, raw=b'{"x": "' + b"a" * 70_000 + b'"}'), 413),
        (stack.post(ORDER, "not-a-token"), 401),
        (stack.post(ORDER, None), 401),
        (stack.post(ORDER, token, headers={"Host": "evil.example"}), 400),
    ]
    for (status, _, body), expected in cases:
        assert status == expected, (status, body[:300])
        assert json.loads(body)["error"]["status"] == expected
    assert stack.journal_length() == before


def test_a_retry_with_the_same_client_order_id_places_one_order(stack):
    token = _user_token("retry")
    body = {**ORDER, "client_order_id": "retry-1", "wait": False}
    before = stack.journal_length()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: stack.post(body, token), range(8)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200] * 7 + [202], [(s, b[:200]) for s, _, b in answers]
    assert len({json.loads(b)["id"] for _, _, b in answers}) == 1
    assert stack.journal_length() == before + 1
    again = stack.post(body, token)
    assert again[0] == 200 and json.loads(again[2])["id"] == json.loads(answers[0][2])["id"]


def test_the_throttle_counts_each_request_once(stack):
    """Whatever a request turns out to be — placed, a retry, bad input — it is counted once: the
    last of the minute's allowance is answered, the next one is 429."""
    token = _user_token("throttle")
    retry = {**ORDER, "client_order_id": "throttle-retry", "wait": False}
    kinds = [retry, retry, {**ORDER, "price": "99.505"}, {**ORDER, "wait": False}]
    for i in range(RATE_PER_MIN):
        status, _, answer = stack.post(kinds[i % len(kinds)], token)
        if status == 429:  # the minute's window turned over mid-way: start again
            pytest.skip("the throttle window ended during the test")
        assert status in (200, 202, 400), answer
    status, headers, answer = stack.post({**ORDER, "wait": False}, token)
    assert status == 429 and json.loads(answer)["error"]["code"] == "throttled"
    assert int(headers["retry-after"]) >= 1
    assert (headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"]) == (
        str(RATE_PER_MIN),
        "0",
    )


def test_a_revoked_token_is_refused_within_a_second(stack):
    user = get_user_model().objects.create_user(username=f"revoked-{uuid.uuid4().hex[:6]}")
    token_row, token = api_token_create(user=user, name="tests")
    assert stack.post({**ORDER, "wait": False}, token)[0] == 202
    api_token_revoke(user=user, token_id=token_row.pk)
    time.sleep(1.2)
    assert stack.post({**ORDER, "wait": False}, token)[0] == 401


def test_an_order_only_the_journal_has_is_replaced_cancelled_and_cancelled_all(stack):
    """No recorder runs: the rows do not exist, and the engine takes every command all the same."""
    token = _user_token("no-recorder")
    placed = [json.loads(stack.post({**ORDER, "wait": True}, token)[2]) for _ in range(3)]
    assert [o["status"] for o in placed] == ["NEW"] * 3
    assert not Order.objects.filter(pk__in=[o["id"] for o in placed]).exists()
    first, second, third = (o["id"] for o in placed)
    replace = stack.post({"quantity": "1"}, token, path=f"/api/v1/orders/{first}/replace")
    assert replace[0] == 200, replace  # the engine's answer, though no row exists
    replaced = json.loads(replace[2])
    assert (replaced["status"], replaced["quantity"], replaced["id"]) == ("NEW", "1", first)
    cancel = stack.post(None, token, path=f"/api/v1/orders/{second}/cancel", raw=b"")
    assert cancel[0] == 200, cancel
    assert json.loads(cancel[2])["status"] == "CANCELED"
    again = stack.post(None, token, path=f"/api/v1/orders/{second}/cancel", raw=b"")
    assert again[0] == 409 and json.loads(again[2])["error"]["code"] == "order_not_open", again
    everything = stack.post({}, token, path="/api/v1/orders/cancel-all")
    assert everything[0] == 202 and json.loads(everything[2]) == {"requested": 3}

    def engine_said() -> dict:
        said = {}
        for _, fields in stack.redis.xrange(f"{stack.prefix}:evt:{{ACME}}"):
            for event in flashbook_engine.decode_events(fields["e"]):
                if event.kind in ("replaced", "cancelled") and event.order_id in (
                    first,
                    second,
                    third,
                ):
                    said.setdefault(event.order_id, []).append(event.kind)
        return said

    wait_until(lambda: len(engine_said()) == 3, 10, "the engine's answers")
    said = engine_said()
    assert said[first] == ["replaced", "cancelled"]
    assert said[second] == ["cancelled"] and said[third] == ["cancelled"]
