"""The order-entry fast path: `POST /api/v1/orders/` from programs, served on the event loop.

Django's request cycle under ASGI costs about 1.5 ms of CPU per request on the machines we
measure on (a hello-world view, no middleware: ~600 requests/s on 2 workers, against ~18,000 for a
bare ASGI app), which alone rules out the order rate an exchange needs. So the one request that
matters for throughput — a program placing an order with its bearer token — is answered here,
without Django's handler, threads or per-request connections, and everything else goes to Django.

It is an accelerator, not a second API: it answers only when the order is *accepted for the
journal*, with exactly the body, status and headers the DRF view (`OrderListCreateApi.post`)
gives; the gateway's async face (`gateway.aorder_submit`) does the work — the same validation, the
same writes. Whenever the request is anything but that — another path or method, a session
instead of a token, a body that is not plain JSON, an unknown token, invalid input, an idempotent
retry that must be looked up, the throttle's limit — it hands the untouched request to Django,
whose view answers it (the error format, 401, 413, 429...). Nothing is written before that point,
so the view sees the request as if it came first.

What it trusts for a second (as the gateway's instrument cache does): a token and its account
(`authentication.acaller_for_secret`), an account's standing (`gateway.ACCOUNT_CHECK_SECONDS`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.renderers import JSONRenderer

from exchange import gateway
from exchange.api import serializers as s
from exchange.api.authentication import KEYWORDS, MAX_SECRET_LENGTH, acaller_for_secret
from exchange.api.errors import error_body
from exchange.api.parsers import MAX_BODY_BYTES, parse_json
from exchange.api.throttling import aorder_rate_allows
from exchange.errors import ExchangeError

logger = logging.getLogger("flashbook.api")

ORDERS_PATH = "/api/v1/orders/"
JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _HandToDjango(Exception):
    """Not the fast path's to answer: Django's view answers it."""


def _response_headers() -> list[tuple[bytes, bytes]]:
    """The headers Django's middleware gives an API answer (SecurityMiddleware,
    XFrameOptionsMiddleware; the JSON renderer's content type)."""
    headers = [
        (b"content-type", b"application/json"),
        (b"allow", b"GET, POST, HEAD, OPTIONS"),
        (b"x-frame-options", settings.X_FRAME_OPTIONS.encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    if settings.SECURE_REFERRER_POLICY:
        headers.append((b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(
            (b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode())
        )
    return headers


class OrderEntryApp:
    """ASGI middleware: order entry by token here, every other request to `django_app`."""

    def __init__(self, django_app: ASGIApp) -> None:
        self.django_app = django_app
        self._order_in = s.OrderCreateSerializer()  # built once: its fields are reused
        self._order_out = s.OrderDetailSerializer()
        self._renderer = JSONRenderer()
        self._headers: list[tuple[bytes, bytes]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._is_candidate(scope):
            await self.django_app(scope, receive, send)
            return
        body, more = await _read_body(receive)
        try:
            if more:
                raise _HandToDjango  # too large: Django answers 413
            await self._place(scope, body, send)
        except _HandToDjango:
            await self.django_app(scope, _replay(body, more, receive), send)

    def _is_candidate(self, scope: Scope) -> bool:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != ORDERS_PATH
            or scope.get("query_string")
            or (settings.SECURE_SSL_REDIRECT and scope.get("scheme") != "https")
        ):
            return False
        return _bearer_secret(scope) is not None

    async def _place(self, scope: Scope, body: bytes, send: Send) -> None:
        headers = dict(scope["headers"])  # a repeated header: the view decides
        if headers.get(b"content-type") not in JSON_TYPES or not _host_allowed(headers):
            raise _HandToDjango
        caller = await acaller_for_secret(_bearer_secret(scope))
        if caller is None:
            raise _HandToDjango  # 401 from the view
        try:
            data = self._order_in.run_validation(parse_json(body))
        except (ParseError, ValidationError):
            raise _HandToDjango from None
        if not await aorder_rate_allows(caller.user.pk):
            raise _HandToDjango  # 429 from the view
        order_request, wait = s.order_request(data)
        try:
            outcome = await gateway.aorder_submit(
                account=caller.account, request=order_request, wait=wait
            )
        except ExchangeError as exc:
            if exc.status != 503:
                raise _HandToDjango from None  # refused before anything was written
            body = error_body(exc.status, exc.code, exc.field, exc.message)
            await self._send(send, exc.status, body)
            return
        except Exception:
            # Perhaps after the order was journaled: never hand it on (the view would place it
            # again). The answer Django's handler500 gives.
            logger.exception("order entry failed")
            body = error_body(500, "server_error", None, "Internal server error.")
            await self._send(send, 500, body)
            return
        if not outcome.created:
            raise _HandToDjango  # an idempotent retry: the view looks the order up
        status = 201 if outcome.engine else 202
        presented = s.order_from_outcome(outcome)
        await self._send(send, status, self._order_out.to_representation(presented))

    async def _send(self, send: Send, status: int, data: dict) -> None:
        if self._headers is None:
            self._headers = _response_headers()
        payload = self._renderer.render(data)
        headers = [*self._headers, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _bearer_secret(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            parts = value.split()
            if len(parts) == 2 and parts[0].lower() in KEYWORDS:
                if len(parts[1]) <= MAX_SECRET_LENGTH and parts[1].isascii():
                    return parts[1].decode("ascii")
            return None
    return None


def _host_allowed(headers: dict[bytes, bytes]) -> bool:
    raw = headers.get(b"host")
    if raw is None:
        return False
    return _host_valid(raw, tuple(settings.ALLOWED_HOSTS), settings.DEBUG)


@functools.lru_cache(maxsize=64)  # a server is reached by a few names; each checked once
def _host_valid(raw: bytes, allowed: tuple[str, ...], debug: bool) -> bool:
    try:
        host = raw.decode("ascii")
    except UnicodeDecodeError:
        return False
    domain, _ = split_domain_port(host)
    if debug and not allowed:
        allowed = (".localhost", "127.0.0.1", "[::1]")
    return bool(domain) and validate_host(domain, allowed)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, up to one byte more than the parser takes; and whether more follows
    (then the rest stays unread for Django's handler)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True  # a disconnect: let Django see it
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False
        if size > MAX_BODY_BYTES:
            return b"".join(chunks), True


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """A `receive` that gives Django the body read so far, then the rest of the request."""
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay
