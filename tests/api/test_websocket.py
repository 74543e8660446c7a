"""The WebSocket API for programs (`/ws/v1/`, `exchange/api/websocket.py`) and the close codes of
every socket, with a real client (`websockets`, which sends no Origin header, as most programs)
against the real stack: uvicorn, the engine worker, the recorder and the bridge, on the database
the suite runs on (SQLite, or PostgreSQL in `make pg-test`)."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from exchange.services import api_token_create
from tests.live_stack import live_stack

from .support import make_instrument

RATE_PER_MIN = 400
ORDER = {"symbol": "ACME", "side": "buy", "type": "limit", "price": "99.00", "quantity": "2"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, django_db_setup, django_db_blocker):
    kind = "postgresql" if "postgresql" in settings.DATABASES["default"]["ENGINE"] else "sqlite"
    env = {"FLASHBOOK_ORDER_RATE": f"{RATE_PER_MIN}/min", "FLASHBOOK_ORDER_WAIT": "5"}
    folder = tmp_path_factory.mktemp("websocket")
    with (
        django_db_blocker.unblock(),
        live_stack(
            kind,
            folder,
            ["engine-all", "recorder", "bridge"],
            env,
            lambda: make_instrument(served=False, price_band_pct=Decimal("20")),
        ) as running,
    ):
        yield running


@pytest.fixture
def new_token(stack, django_db_blocker):
    def make() -> str:
        with django_db_blocker.unblock():
            name = f"prog-{uuid.uuid4().hex[:8]}"
            user = get_user_model().objects.create_user(username=name)
            return api_token_create(user=user, name="tests")[1]

    return make


class Program:
    """A program on the WebSocket API: requests with ids, answers matched by id, pushed frames
    kept in arrival order."""

    _ids = itertools.count(1)

    def __init__(self, stack, token: str | None = None, header: bool = True):
        headers = {"Authorization": f"Bearer {token}"} if token and header else None
        self.socket = connect(
            f"ws://127.0.0.1:{stack.port}/ws/v1/", additional_headers=headers, open_timeout=10
        )
        self.pushed: list[dict] = []
        self.answers: dict = {}
        self.hello = self.next_message()

    def next_message(self, timeout: float = 10) -> dict:
        return json.loads(self.socket.recv(timeout=timeout))

    def send(self, method: str, params: dict | None = None, request_id=None):
        request_id = request_id if request_id is not None else f"r{next(self._ids)}"
        message = {"id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.socket.send(json.dumps(message))
        return request_id

    def answer(self, request_id, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while request_id not in self.answers:
            message = self.next_message(max(0.01, deadline - time.monotonic()))
            if "id" in message:
                self.answers[message["id"]] = message
            else:
                self.pushed.append(message)
        return self.answers.pop(request_id)

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.answer(self.send(method, params))

    def pushed_until(self, predicate, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.pushed):
                if predicate(message):
                    return self.pushed.pop(index)
            message = self.next_message(max(0.01, deadline - time.monotonic()))
            if "id" in message:
                self.answers[message["id"]] = message
            else:
                self.pushed.append(message)

    def close(self):
        self.socket.close()


def _close_code(stack, path: str, **kwargs) -> int:
    with connect(f"ws://127.0.0.1:{stack.port}{path}", open_timeout=10, **kwargs) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(timeout=10)
    return closed.value.rcvd.code


# --- every socket: no Origin needed, the documented close codes ---------------------------------


def test_sockets_close_with_the_documented_codes_and_need_no_origin(stack):
    with connect(f"ws://127.0.0.1:{stack.port}/ws/market/ACME/", open_timeout=10) as market:
        snapshot = json.loads(market.recv(timeout=10))
    assert (snapshot["type"], snapshot["symbol"]) == ("snapshot", "ACME")
    assert _close_code(stack, "/ws/market/NOPE/") == 4404
    page = f"http://127.0.0.1:{stack.port}"  # the browser's socket: its own page's origin
    assert _close_code(stack, "/ws/account/", origin=page) == 4401  # no session
    # The browser's socket still refuses another site's page (its cookies would be sent).
    with pytest.raises(InvalidStatus) as refused:
        connect(
            f"ws://127.0.0.1:{stack.port}/ws/account/",
            origin="https://evil.example",
            open_timeout=10,
        )
    assert refused.value.response.status_code == 403
    code = _close_code(stack, "/ws/v1/", additional_headers={"Authorization": "Bearer not-a-token"})
    assert code == 4401


# --- requests -----------------------------------------------------------------------------------


def test_authentication_by_header_or_by_message(stack, new_token):
    token = new_token()
    program = Program(stack, token)
    assert program.hello["type"] == "hello" and isinstance(program.hello["account"], int)
    program.close()

    program = Program(stack, token, header=False)
    assert program.hello["account"] is None
    refused = program.call("order.place", ORDER)
    assert (refused["status"], refused["error"]["code"]) == (401, "not_authenticated")
    wrong = program.call("auth", {"token": "nope"})
    assert (wrong["status"], wrong["error"]["code"]) == (401, "invalid_token")
    right = program.call("auth", {"token": token})
    assert right["status"] == 200 and isinstance(right["result"]["account"], int)
    assert program.call("order.place", ORDER)["status"] == 201
    program.close()


def test_order_requests_answer_as_the_rest_api(stack, new_token):
    program = Program(stack, new_token())
    placed = program.call("order.place", {**ORDER, "client_order_id": "ws-1"})
    assert placed["status"] == 201, placed
    order = placed["result"]
    assert (order["status"], order["client_order_id"], order["price"]) == ("NEW", "ws-1", "99.00")
    assert order["fills"] == []
    # A retry of the client order id: 200, nothing placed.
    again = program.call("order.place", {**ORDER, "client_order_id": "ws-1"})
    assert (again["status"], again["result"]["id"]) == (200, order["id"])

    status = program.call("order.status", {"client_order_id": "ws-1"})
    assert (status["status"], status["result"]["id"]) == (200, order["id"])
    # Until the recorder has written it, reads show it PENDING (as REST's).
    assert program.call("order.status", {"id": order["id"]})["result"]["status"] in (
        "PENDING",
        "NEW",
    )
    listed = program.call("orders.open", {"symbol": "ACME"})
    assert [o["id"] for o in listed["result"]["orders"]] == [order["id"]]

    replaced = program.call("order.replace", {"id": order["id"], "price": "98.50"})
    assert replaced["status"] == 200, replaced
    assert (replaced["result"]["price"], replaced["result"]["status"]) == ("98.50", "NEW")
    outside = program.call("order.replace", {"id": order["id"], "price": "150.00"})
    assert (outside["status"], outside["error"]["code"]) == (409, "price_out_of_band")
    cancelled = program.call("order.cancel", {"client_order_id": "ws-1"})
    assert (cancelled["status"], cancelled["result"]["status"]) == (200, "CANCELED")
    gone = program.call("order.cancel", {"id": order["id"]})
    assert (gone["status"], gone["error"]["code"]) == (409, "order_not_open")
    assert program.call("order.cancel_all", {"symbol": "ACME"})["status"] == 202

    # Bad input: the REST API's statuses and error bodies, and nothing placed.
    bad = program.call("order.place", {**ORDER, "price": 99})
    assert (bad["status"], bad["error"]["field"]) == (400, "price")
    bad = program.call("order.place", {**ORDER, "colour": "red"})
    assert bad["status"] == 400 and bad["error"]["field"] == "colour"
    bad = program.call("order.place", {**ORDER, "symbol": "NOPE"})
    assert (bad["status"], bad["error"]["code"]) == (400, "unknown_symbol")
    bad = program.call("order.cancel", {})
    assert (bad["status"], bad["error"]["field"]) == (400, "id")
    bad = program.call("order.status", {"id": 10**9})
    assert (bad["status"], bad["error"]["code"]) == (404, "unknown_order")
    bad = program.call("order.launch", {})
    assert (bad["status"], bad["error"]["field"]) == (400, "method")
    # Once the recorder has written the cancel, the order leaves the open ones.
    deadline = time.monotonic() + 10
    while program.call("orders.open")["result"]["orders"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    program.socket.send("not json")
    assert program.next_message()["error"]["code"] == "parse_error"
    assert program.call("ping")["result"]["time"] > 0
    program.close()


def test_requests_are_taken_in_the_order_sent(stack, new_token):
    """A cancel sent right behind its order's NEW, without waiting for the NEW's answer, finds
    the order: requests are admitted in order; answers may come in any."""
    program = Program(stack, new_token())
    sent = []
    for n in range(20):
        sent.append(program.send("order.place", {**ORDER, "client_order_id": f"o-{n}"}))
        sent.append(program.send("order.cancel", {"client_order_id": f"o-{n}"}))
    answers = [program.answer(request_id) for request_id in sent]
    assert [a["status"] for a in answers[0::2]] == [201] * 20
    assert [(a["status"], a["result"]["status"]) for a in answers[1::2]] == [(200, "CANCELED")] * 20
    program.close()


def test_order_writes_count_against_the_rate_limit(stack, new_token):
    program = Program(stack, new_token())
    answers = [program.send("order.cancel_all", {}) for _ in range(RATE_PER_MIN + 1)]
    last = [program.answer(request_id) for request_id in answers][-1]
    assert (last["status"], last["error"]["code"]) == (429, "throttled")
    assert last["retry_after"] >= 1
    assert program.call("orders.open")["status"] == 200  # reads are not counted
    program.close()


# --- subscriptions ------------------------------------------------------------------------------


def test_executions_subscribers_are_told_their_place_in_the_queue(stack, new_token):
    """`queue` frames follow a resting order's place as the orders ahead of it leave, which are
    none of its owner's events."""
    first, mine = Program(stack, new_token()), Program(stack, new_token())
    assert mine.call("subscribe", {"channel": "executions"})["status"] == 200
    level = {**ORDER, "price": "99.37"}
    ahead = first.call("order.place", {**level, "quantity": "4"})["result"]
    order = mine.call("order.place", level)["result"]

    def place(frame: dict) -> dict | None:
        if frame["type"] != "queue":
            return None
        return next((o for o in frame["orders"] if o["order_id"] == order["id"]), None)

    def position(frame: dict) -> dict | None:
        listed = place(frame)
        return None if listed is None else listed["queue_position"]

    behind = mine.pushed_until(lambda m: position(m) is not None)
    assert place(behind)["symbol"] == "ACME"
    assert position(behind)["orders_ahead"] == 1 and position(behind)["quantity_ahead"] == "4"
    assert position(behind)["level_orders"] == 2 and position(behind)["level_quantity"] == "6"

    # The order ahead is cancelled by its owner: an event of another account, yet a new frame.
    assert first.call("order.cancel", {"id": ahead["id"]})["status"] == 200
    front = mine.pushed_until(lambda m: (position(m) or {}).get("orders_ahead") == 0)
    assert position(front)["quantity_ahead"] == "0" and position(front)["level_orders"] == 1

    # Once it leaves the queue, one frame says so.
    assert mine.call("order.cancel", {"id": order["id"]})["status"] == 200
    gone = mine.pushed_until(lambda m: place(m) is not None and position(m) is None)
    assert place(gone) == {"order_id": order["id"], "symbol": "ACME", "queue_position": None}
    for program in (first, mine):
        program.close()


def test_subscriptions_push_market_data_executions_and_the_balance(stack, new_token):
    maker, taker = Program(stack, new_token()), Program(stack, new_token())
    subscribed = maker.call("subscribe", {"channel": "executions"})
    assert subscribed == {
        "id": subscribed["id"],
        "status": 200,
        "result": {"channel": "executions", "live": True},
    }
    assert maker.call("subscribe", {"channel": "account"})["status"] == 200
    first_balance = maker.pushed_until(lambda m: m["type"] == "account")["account"]
    assert first_balance["cash"] == "100000.00" and first_balance["positions"] == []
    watcher = Program(stack)  # market data needs no token
    answer = watcher.call("subscribe", {"channel": "market", "symbol": "ACME"})
    assert answer["status"] == 200
    snapshot = watcher.pushed_until(lambda m: m["type"] == "snapshot")
    seq = snapshot["seq"]
    unknown = watcher.call("subscribe", {"channel": "market", "symbol": "NOPE"})
    assert (unknown["status"], unknown["error"]["code"]) == (404, "unknown_symbol")
    private = watcher.call("subscribe", {"channel": "executions"})
    assert private["status"] == 401

    sell = {**ORDER, "side": "sell", "price": "101.00", "quantity": "3"}
    resting = maker.call("order.place", sell)["result"]
    bought = taker.call("order.place", {**ORDER, "price": "101.00", "quantity": "3"})
    assert bought["result"]["status"] == "FILLED"

    # The maker's own executions: its order accepted, then the trade from its side.
    accepted = maker.pushed_until(
        lambda m: m["type"] == "executions" and any(e["kind"] == "accepted" for e in m["events"])
    )
    assert accepted["events"][0]["order_id"] == resting["exchange_order_id"]
    trade = maker.pushed_until(
        lambda m: m["type"] == "executions" and any(e["kind"] == "trade" for e in m["events"])
    )
    fill = next(e for e in trade["events"] if e["kind"] == "trade")
    assert (fill["role"], fill["side"], fill["price"], fill["qty"]) == (
        "maker",
        "sell",
        "101.00",
        "3",
    )
    # Its balance once the recorder has written the trade (fees are zero here).
    balance = maker.pushed_until(
        lambda m: m["type"] == "account" and m["account"]["positions"] != []
    )["account"]
    assert balance["cash"] == "100303.00"
    assert balance["positions"][0]["quantity"] == "-3"

    # The market: frames that follow on from the snapshot, the trade among them.
    frames = []
    while not any(f["type"] == "trades" for f in frames):
        frames.append(watcher.pushed_until(lambda m: m["type"] in ("book", "trades", "stats")))
    for frame in frames:
        assert frame["prev"] == seq and frame["seq"] >= seq
        seq = frame["seq"]
    trades = next(f for f in frames if f["type"] == "trades")["trades"]
    assert (trades[-1]["price"], trades[-1]["qty"], trades[-1]["side"]) == ("101.00", "3", "buy")

    assert watcher.call("unsubscribe", {"channel": "market", "symbol": "ACME"})["status"] == 200
    for program in (maker, taker, watcher):
        program.close()
