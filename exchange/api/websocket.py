"""The WebSocket API for programs: `/ws/v1/`. One connection carries requests with ids (order
entry and queries: the REST API's actions, `exchange.api.actions`, with the same validation, rules,
statuses and error bodies) and subscriptions (market data, the account's executions, its balance).

A thin adapter: it parses a request, calls the action, and sends the REST answer's status and body
under the request's id; what it pushes are the bridge's frames (the one fan-out), as the browser's
sockets get them. The wire format is in `docs/api.md`, "WebSocket API".

Authentication is by API token — an `Authorization: Bearer <token>` header at the handshake or
an `auth` request — never by cookie, so no Origin is needed (or checked). Market data needs none.

Requests are admitted in the order they arrive: the next is read once the one before is in the
journal (or answered), so a cancel sent right after its order's NEW always follows it; their
answers — which may wait for the engine — can come back in any order, matched by `id`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import suppress

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import aclose_old_connections
from channels.generic.websocket import AsyncWebsocketConsumer
from rest_framework import exceptions, serializers

from exchange import selectors
from exchange.api import actions
from exchange.api import serializers as s
from exchange.api.authentication import MAX_SECRET_LENGTH, acaller_for_secret
from exchange.api.errors import error_answer, error_body
from exchange.api.serializers import StrictSerializer
from exchange.api.throttling import aorder_rate_wait
from exchange.errors import ExchangeError, InvalidInput, NotFound
from exchange.live import bridge
from exchange.live.consumers import (
    CLOSE_UNAUTHENTICATED,
    WATCH_REFRESH,
    MarketFeed,
    RedisMixin,
    known_symbol,
    watch_account,
)
from exchange.models import Account
from exchange.orders.rules import CLIENT_ORDER_ID_MAX
from exchange.protocol.symbols import SYMBOL_MAX

logger = logging.getLogger("flashbook.api")

MAX_MESSAGE_BYTES = 16 * 1024
MAX_IN_FLIGHT = 64  # requests of one connection waiting for their answers; then reading pauses
MAX_REQUEST_ID = 64  # characters of a string id
ACCOUNT_SETTLE = 0.05  # seconds after an execution before the balance is read (the recorder's)
ACCOUNT_INTERVAL = 1.0  # the balance is looked at this often too (marks move with the market)
# The queues of an `executions` subscriber's resting orders are looked at this often: orders
# ahead leave a queue by others' fills and cancels, which are no events of the account's. One
# MGET of the engine's queue keys, the same the REST order detail reads.
QUEUE_INTERVAL = 0.25
ORDERS_INTERVAL = 2.0  # its open orders are read again this often, and after its executions
CLOSE_MESSAGE_TOO_BIG = 1009

CHANNELS = ("market", "executions", "account")


class OrderRefSerializer(StrictSerializer):
    """The order a request names: by `id` or by `client_order_id`."""

    id = serializers.IntegerField(required=False, min_value=1)
    client_order_id = serializers.CharField(
        required=False, max_length=CLIENT_ORDER_ID_MAX, trim_whitespace=False
    )

    def validate(self, attrs):
        if ("id" in attrs) == ("client_order_id" in attrs):
            raise exceptions.ValidationError(
                {"id": ["Name the order by id or by client_order_id (one of them)."]},
                code="required",
            )
        return attrs


class CancelRequestSerializer(OrderRefSerializer, s.OrderCancelSerializer):
    pass


class ReplaceRequestSerializer(OrderRefSerializer, s.OrderReplaceSerializer):
    pass


class SymbolFilterSerializer(StrictSerializer):
    symbol = serializers.CharField(max_length=SYMBOL_MAX, required=False)


class AuthSerializer(StrictSerializer):
    token = serializers.CharField(max_length=MAX_SECRET_LENGTH, trim_whitespace=False)


class SubscriptionSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=CHANNELS)
    symbol = serializers.CharField(max_length=SYMBOL_MAX, required=False)

    def validate(self, attrs):
        if attrs["channel"] == "market" and not attrs.get("symbol"):
            raise exceptions.ValidationError(
                {"symbol": ["The market channel needs a symbol."]}, code="required"
            )
        return attrs


# One instance of each request serializer, reused: building one copies its declared fields, 21 %
# of a web worker's CPU under `make bench-ws` when each request built its own. Validation is
# synchronous, so requests on one event loop never share an instance at the same time.
_validators: dict[type, serializers.Serializer] = {}


def _valid(serializer_class, params) -> dict:
    validator = _validators.get(serializer_class)
    if validator is None:
        validator = _validators[serializer_class] = serializer_class()
    return validator.run_validation(params)


def _which(data: dict) -> dict:
    if "id" in data:
        return {"order_id": data["id"]}
    return {"client_order_id": data["client_order_id"]}


class NotAuthenticated(ExchangeError):
    status = 401
    code = "not_authenticated"


class ApiConsumer(RedisMixin, AsyncWebsocketConsumer):
    caller = None
    feeds: dict[str, MarketFeed]
    executions = False
    bridge_seen = False
    _hygiene_at = -1e9
    account_task: asyncio.Task | None = None
    watch_task: asyncio.Task | None = None
    queue_task: asyncio.Task | None = None

    # --- the connection ---

    async def dispatch(self, message):
        # Channels closes the database connections that outlived their age before every message,
        # with a hop to the sync thread each time: 7 % of a web worker's CPU under `make
        # bench-ws`. Once a second does the same job for a connection that sends many.
        now = time.monotonic()
        if now - self._hygiene_at > 1.0:
            self._hygiene_at = now
            await aclose_old_connections()
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        self.feeds = {}
        self.tasks: set[asyncio.Task] = set()
        self.in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.account_changed = asyncio.Event()
        self.orders_changed = asyncio.Event()
        self.methods = {
            "auth": self.auth,
            "ping": self.ping,
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe,
            "order.place": self.place,
            "order.cancel": self.cancel,
            "order.replace": self.replace,
            "order.cancel_all": self.cancel_all,
            "order.status": self.order_status,
            "orders.open": self.open_orders,
            "account": self.account,
        }
        await self.accept()
        header = dict(self.scope["headers"]).get(b"authorization")
        if header is not None:
            parts = header.split()
            secret = parts[1].decode("latin-1") if len(parts) == 2 else ""
            if not await self._authenticate(secret):
                body = error_body(401, "invalid_token", None, "Invalid or revoked token.")
                await self._send({"type": "error", **body})
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
        await self._send(
            {
                "type": "hello",
                "account": self.caller.account.pk if self.caller else None,
                "time": time.time_ns() // 1_000_000,
            }
        )

    async def disconnect(self, code):
        for task in (*self.tasks, self.account_task, self.watch_task, self.queue_task):
            if task is not None:
                task.cancel()
        for feed in self.feeds.values():
            await self.channel_layer.group_discard(feed.group, self.channel_name)
        if self.watch_task is not None:
            await self.channel_layer.group_discard(
                bridge.account_group(self.caller.account.pk), self.channel_name
            )
        await self.close_redis()

    async def receive(self, text_data=None, bytes_data=None):
        if bytes_data is not None or len(text_data or "") > MAX_MESSAGE_BYTES:
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            await self._answer_error(None, InvalidInput("Not JSON.", code="parse_error"))
            return
        request_id = message.get("id") if isinstance(message, dict) else None
        if not _valid_id(request_id):
            request_id = None
            if isinstance(message, dict) and "id" in message:
                error = InvalidInput(
                    f"id: a string of at most {MAX_REQUEST_ID} characters or an integer.",
                    field="id",
                )
                await self._answer_error(None, error)
                return
        method = message.get("method") if isinstance(message, dict) else None
        handler = self.methods.get(method) if isinstance(method, str) else None
        if handler is None:
            known = ", ".join(self.methods)
            error = InvalidInput(f"Unknown method; one of: {known}.", field="method")
            await self._answer_error(request_id, error)
            return
        params = message.get("params", {})
        if not isinstance(params, dict):
            await self._answer_error(request_id, InvalidInput("An object.", field="params"))
            return
        # Admitted in order: the next request is read once this one is journaled or answered.
        await self.in_flight.acquire()
        admitted = asyncio.Event()
        task = asyncio.create_task(self._run(request_id, handler, params, admitted))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        await admitted.wait()

    async def _run(self, request_id, handler, params, admitted: asyncio.Event) -> None:
        try:
            status, result, *after = await handler(params, admitted.set)
        except Exception as exc:
            await self._answer_error(request_id, exc)
        else:
            await self._send({"id": request_id, "status": status, "result": result})
            for then in after:  # what follows the answer (a subscription's snapshot)
                await then
        finally:
            admitted.set()
            self.in_flight.release()

    async def _answer_error(self, request_id, exc: Exception) -> None:
        answer = error_answer(exc)
        if answer is None:
            logger.exception("websocket request failed", exc_info=exc)
            answer = 500, error_body(500, "server_error", None, "Internal server error."), {}
        status, body, headers = answer
        message = {"id": request_id, "status": status, **body}
        if "Retry-After" in headers:
            message["retry_after"] = int(headers["Retry-After"])
        await self._send(message)

    async def _send(self, message: dict) -> None:
        await self._send_text(json.dumps(message, separators=(",", ":")))

    async def _send_text(self, text: str) -> None:
        with suppress(OSError, RuntimeError):  # the client went away: nothing to tell
            await self.send(text_data=text)

    # --- authentication ---

    async def _authenticate(self, secret: str) -> bool:
        if not secret or len(secret) > MAX_SECRET_LENGTH or not secret.isascii():
            return False
        caller = await acaller_for_secret(secret)
        if caller is None:
            return False
        self.caller = caller
        return True

    def _account(self):
        if self.caller is None:
            raise NotAuthenticated("Authenticate first: an Authorization header or `auth`.")
        return self.caller.account

    async def _throttled(self) -> None:
        """Counts an order write against the user's rate, as the REST API does."""
        wait = await aorder_rate_wait(self.caller.user.pk)
        if wait is not None:
            raise exceptions.Throttled(wait)

    async def auth(self, params, admitted):
        data = _valid(AuthSerializer, params)
        if self.caller is not None:
            raise InvalidInput("This connection is authenticated already.", code="authenticated")
        if not await self._authenticate(data["token"]):
            raise NotAuthenticated("Invalid or revoked token.", field="token", code="invalid_token")
        return 200, {"account": self.caller.account.pk}

    async def ping(self, params, admitted):
        return 200, {"time": time.time_ns() // 1_000_000}

    # --- orders: the REST API's actions ---

    async def place(self, params, admitted):
        account = self._account()
        data = _valid(s.OrderCreateSerializer, params)
        await self._throttled()
        return await actions.place(account, data, on_journaled=admitted)

    async def cancel(self, params, admitted):
        account = self._account()
        data = _valid(CancelRequestSerializer, params)
        await self._throttled()
        return await actions.cancel(account, data, on_journaled=admitted, **_which(data))

    async def replace(self, params, admitted):
        account = self._account()
        data = _valid(ReplaceRequestSerializer, params)
        await self._throttled()
        return await actions.replace(account, data, on_journaled=admitted, **_which(data))

    async def cancel_all(self, params, admitted):
        account = self._account()
        data = _valid(s.OrderCancelAllSerializer, params)
        await self._throttled()
        return await actions.cancel_all(account, data)

    async def order_status(self, params, admitted):
        account = self._account()
        data = _valid(OrderRefSerializer, params)
        return await sync_to_async(actions.order_status)(account, **_which(data))

    async def open_orders(self, params, admitted):
        account = self._account()
        data = _valid(SymbolFilterSerializer, params)
        return await sync_to_async(actions.open_orders)(account, data.get("symbol"))

    async def account(self, params, admitted):
        _valid(StrictSerializer, params)
        return 200, await self._account_summary()

    async def _account_summary(self) -> dict:
        account = self._account()

        def read() -> dict:
            fresh = Account.objects.get(pk=account.pk)  # the caller's is shared and cached
            return dict(s.AccountSerializer(selectors.account_summary(fresh)).data)

        return await sync_to_async(read)()

    # --- subscriptions ---

    async def subscribe(self, params, admitted):
        data = _valid(SubscriptionSerializer, params)
        channel = data["channel"]
        if channel == "market":
            symbol = data["symbol"]
            if symbol in self.feeds:
                return 200, {"channel": channel, "symbol": symbol}
            if not await known_symbol(symbol):
                message = f"Unknown symbol {symbol[:40]!r}."
                raise NotFound(message, field="symbol", code="unknown_symbol")
            feed = self.feeds[symbol] = MarketFeed(symbol, self.redis, self._send_text)
            # Joined first, then the snapshot read (after the answer): every frame is either in
            # it or still to come.
            await self.channel_layer.group_add(feed.group, self.channel_name)
            return 200, {"channel": channel, "symbol": symbol}, feed.snapshot(resync=False)
        account = self._account()
        if channel == "executions":
            self.executions = True
            if self.queue_task is None:
                self.queue_task = asyncio.create_task(self._follow_queues())
        elif self.account_task is None:
            self.account_task = asyncio.create_task(self._follow_account())
        if self.watch_task is None:
            # The account's executions come from the bridge to its group (a balance changes
            # with them), for accounts it is told someone follows: answered once it has seen
            # this one, so that every execution after the answer is sent.
            await self.channel_layer.group_add(bridge.account_group(account.pk), self.channel_name)
            self.bridge_seen = await watch_account(self.redis, account.pk, wait=True)
            self.watch_task = asyncio.create_task(self._keep_watching())
        return 200, {"channel": channel, "live": self.bridge_seen}

    async def unsubscribe(self, params, admitted):
        data = _valid(SubscriptionSerializer, params)
        channel = data["channel"]
        if channel == "market":
            feed = self.feeds.pop(data["symbol"], None)
            if feed is not None:
                await self.channel_layer.group_discard(feed.group, self.channel_name)
            return 200, {"channel": channel, "symbol": data["symbol"]}
        self._account()
        if channel == "executions":
            self.executions = False
            if self.queue_task is not None:
                self.queue_task.cancel()
                self.queue_task = None
        elif self.account_task is not None:
            self.account_task.cancel()
            self.account_task = None
        return 200, {"channel": channel}

    async def _keep_watching(self) -> None:
        while True:
            await asyncio.sleep(WATCH_REFRESH)
            await watch_account(self.redis, self.caller.account.pk)

    async def _follow_account(self) -> None:
        """Sends the account's balance now and whenever it changes: looked at shortly after each
        of its executions (once the recorder has written it) and once a second."""
        last = None
        while True:
            try:
                summary = await self._account_summary()
            except Exception:
                logger.warning("websocket account read failed", exc_info=True)
                summary = last
            if summary != last:
                last = summary
                await self._send({"type": "account", "account": summary})
            self.account_changed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.account_changed.wait(), ACCOUNT_INTERVAL)
                await asyncio.sleep(ACCOUNT_SETTLE)

    async def _follow_queues(self) -> None:
        """Sends `queue` frames: the places of the account's resting orders in their queues,
        those that changed since the last frame (an order that left its queue, or is no longer
        listed, once with `queue_position` null)."""
        account = self.caller.account
        sent: dict[int, tuple[str, dict | None]] = {}
        orders: list = []
        read_at = -1e9
        while True:
            try:
                if self.orders_changed.is_set() or time.monotonic() - read_at > ORDERS_INTERVAL:
                    self.orders_changed.clear()
                    read_at = time.monotonic()
                    orders = await sync_to_async(actions.resting_candidates)(account)
                places = await sync_to_async(actions.queue_places)(orders) if orders else {}
            except Exception:
                logger.warning("websocket queue read failed", exc_info=True)
                places = None
            if places is not None:
                changed = [
                    {"order_id": order_id, "symbol": symbol, "queue_position": position}
                    for order_id, (symbol, position) in places.items()
                    if sent.get(order_id, (None, None))[1] != position
                ]
                changed += [
                    {"order_id": order_id, "symbol": symbol, "queue_position": None}
                    for order_id, (symbol, position) in sent.items()
                    if order_id not in places and position is not None
                ]
                sent = places
                if changed:
                    await self._send({"type": "queue", "orders": changed})
            await asyncio.sleep(QUEUE_INTERVAL)

    # --- the bridge's frames ---

    async def market_frame(self, event):
        feed = self.feeds.get(event.get("symbol"))
        if feed is not None:
            await feed.frame(event)

    async def push_frame(self, event):
        if self.executions:
            await self._send_text(event["text"])
        self.account_changed.set()
        self.orders_changed.set()


def _valid_id(request_id) -> bool:
    if isinstance(request_id, bool):
        return False
    if isinstance(request_id, int):
        return True
    return isinstance(request_id, str) and 0 < len(request_id) <= MAX_REQUEST_ID
