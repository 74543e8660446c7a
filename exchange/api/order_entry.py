"""Placing an order over HTTP: `place`, shared by both of its entry points, and the entry point
for programs — `POST /api/v1/orders/` with a bearer token, served on the event loop.

Why programs do not go through Django's handler: its request cycle under ASGI costs about 1.5 ms
of CPU per request on the machines we measure on (a hello-world view, no middleware: ~600
requests/s on 2 workers, against ~18,000 for a bare ASGI app), which alone rules out the order
rate an exchange needs (`docs/benchmarks.md`). So `OrderEntryApp` answers every request that names
that path and method and carries an `Authorization` header — successes and every failure, in the
API's one error format — and Django answers everything else (pages, sessions, every other
endpoint). Which of the two answers is decided from the request line and headers alone, before any
work: a request is never handed from one to the other. The session-authenticated form of the same
request (the trading page) goes through the DRF view, which calls the same `place`.

What it trusts for a second (as the gateway's instrument cache does): a token and its account
(`authentication.acaller_for_secret`).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Awaitable, Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer

from exchange.api import serializers as s
from exchange.api.actions import place
from exchange.api.authentication import KEYWORDS, MAX_SECRET_LENGTH, acaller_for_secret
from exchange.api.errors import error_body, first_error
from exchange.api.parsers import MAX_BODY_BYTES, RequestTooLarge, parse_json
from exchange.api.throttling import aorder_rate
from exchange.errors import ExchangeError

logger = logging.getLogger("flashbook.api")

ORDERS_PATH = "/api/v1/orders/"
ALLOWED_METHODS = "GET, POST, HEAD, OPTIONS"  # those of `views.OrderListCreateApi`

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Refused(Exception):
    """An answer in the error format."""

    def __init__(self, status: int, code: str, message: str, field=None, headers=()) -> None:
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = list(headers)


def _from_drf(exc: exceptions.APIException, headers=()) -> _Refused:
    code = getattr(exc.detail, "code", None) or exc.default_code
    return _Refused(exc.status_code, code, str(exc.detail), headers=headers)


class OrderEntryApp:
    """ASGI: `POST /api/v1/orders/` with an `Authorization` header here, all else `django_app`."""

    def __init__(self, django_app: ASGIApp) -> None:
        self.django_app = django_app
        self._order_in = s.OrderCreateSerializer()  # built once: its fields are reused
        self._renderer = JSONRenderer()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_ours(scope):
            await self.django_app(scope, receive, send)
            return
        try:
            status, data, extra = await self._place(scope, receive)
        except _Refused as refused:
            status, extra = refused.status, refused.headers
            data = error_body(refused.status, refused.code, refused.field, refused.message)
        except ExchangeError as exc:
            status, extra = exc.status, []
            data = error_body(exc.status, exc.code, exc.field, exc.message)
        except Exception:
            logger.exception("order entry failed")
            status, extra = 500, []
            data = error_body(500, "server_error", None, "Internal server error.")
        await self._send(send, scope, status, data, extra)

    async def _place(self, scope: Scope, receive: Receive) -> tuple[int, dict]:
        # In the order Django and DRF check a request: the host, the credentials, the throttle,
        # then the body.
        headers = dict(scope["headers"])
        if not _host_allowed(headers):
            raise _Refused(400, "bad_request", "Bad request.")
        secret = _bearer_secret(headers.get(b"authorization", b""))
        caller = await acaller_for_secret(secret) if secret is not None else None
        if caller is None:
            message = (
                "Malformed Authorization header: use 'Bearer <token>'."
                if secret is None
                else "Invalid or revoked token."
            )
            auth = [(b"www-authenticate", b'Bearer realm="api"')]
            raise _Refused(401, "invalid_token", message, headers=auth)
        rate = await aorder_rate(caller.user.pk)
        limits = (
            [] if rate is None else [(k.lower().encode(), v.encode()) for k, v in rate.headers()]
        )
        if rate is not None and rate.wait is not None:
            retry = [(b"retry-after", str(max(1, math.ceil(rate.wait))).encode())]
            raise _from_drf(exceptions.Throttled(rate.wait), retry + limits)
        body = await _read_body(receive)
        try:
            data = self._order_in.run_validation(_parsed(headers.get(b"content-type"), body))
        except exceptions.ValidationError as exc:
            raise _validation_refusal(exc, limits) from None
        status, answer = await place(caller.account, data)
        return status, answer, limits

    async def _send(self, send: Send, scope: Scope, status: int, data: dict, extra) -> None:
        payload = self._renderer.render(data)
        headers = [
            *_response_headers(scope.get("scheme") == "https"),
            *extra,
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _parsed(content_type: bytes | None, body: bytes):
    """The request's data as DRF's parser would give it, or a `_Refused`."""
    try:
        if not content_type:
            return {}  # DRF: no media type, no data (the serializer names what is missing)
        media, _, params = content_type.decode("latin-1").partition(";")
        if media.strip().lower() != "application/json":
            raise exceptions.UnsupportedMediaType(media.strip())
        if len(body) > MAX_BODY_BYTES:
            raise RequestTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        charset = "utf-8"
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"')
        return parse_json(body, charset)
    except exceptions.APIException as exc:
        raise _from_drf(exc) from None


def _header_bytes(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in headers]


def _validation_refusal(exc: exceptions.ValidationError, headers=()) -> _Refused:
    field, code, message = first_error(exc.detail)
    return _Refused(400, code, message, field=field, headers=headers)


def _is_ours(scope: Scope) -> bool:
    if (
        scope["type"] != "http"
        or scope["method"] != "POST"
        or scope["path"] != ORDERS_PATH
        or (settings.SECURE_SSL_REDIRECT and scope.get("scheme") != "https")  # Django redirects
    ):
        return False
    for name, value in scope["headers"]:
        if name == b"authorization":
            keyword = value.split(None, 1)[0].lower() if value.strip() else b""
            return keyword in KEYWORDS
    return False


def _bearer_secret(value: bytes) -> str | None:
    parts = value.split()
    if len(parts) != 2 or len(parts[1]) > MAX_SECRET_LENGTH or not parts[1].isascii():
        return None
    return parts[1].decode("ascii")


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


@functools.cache
def _response_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    """The headers Django's middleware gives an API answer, taken from that middleware itself
    (security headers, frame options) once per process, with the renderer's content type."""
    request = HttpRequest()
    request._get_scheme = lambda: "https" if secure else "http"  # what `is_secure` asks
    response = HttpResponse()
    SecurityMiddleware(lambda r: response).process_response(request, response)
    XFrameOptionsMiddleware(lambda r: response).process_response(request, response)
    headers = [(b"content-type", b"application/json"), (b"allow", ALLOWED_METHODS.encode())]
    for name, value in response.headers.items():
        if name.lower() != "content-type":
            headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return headers


async def _read_body(receive: Receive) -> bytes:
    """The request body, up to one byte more than the parser takes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Refused(400, "bad_request", "The client went away.")
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False) or size > MAX_BODY_BYTES:
            return b"".join(chunks)
