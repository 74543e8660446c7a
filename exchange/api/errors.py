"""One error format for every failure the API answers:

    {"error": {"status": 400, "code": "invalid_price", "field": "price", "message": "..."}}

`exception_handler` (DRF's EXCEPTION_HANDLER) maps the exchange's `ExchangeError`s and DRF's own
exceptions (validation, authentication, permission, not found, method, media type, parse errors,
throttling). For a validation error it reports the first offending field and its code. The
`handler*` views give the same shape to failures Django answers before any API view runs (no
such URL, a request it refuses, a server error) for paths under `/api/`.
"""

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from exchange.errors import ExchangeError

logger = logging.getLogger("flashbook.api")

API_PREFIX = "/api/"
NON_FIELD_KEYS = {"non_field_errors", "detail"}


def error_body(status_code: int, code: str, field: str | None, message: str) -> dict:
    return {"error": {"status": status_code, "code": code, "field": field, "message": message}}


def first_error(detail) -> tuple[str | None, str, str]:
    """(field, code, message) of the first error in a DRF ValidationError's detail. Nested
    fields are joined with dots (`legs.0.price`)."""
    found = _first(detail, [])
    if found is None:
        return None, "invalid", "Invalid input."
    path, code, message = found
    path = [part for part in path if part not in NON_FIELD_KEYS]
    return (".".join(path) or None), code, message


def _first(detail, path: list[str]):
    if isinstance(detail, dict):
        for key, value in detail.items():
            found = _first(value, [*path, str(key)])
            if found is not None:
                return found
        return None
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            nested = isinstance(value, dict | list)
            found = _first(value, [*path, str(index)] if nested else path)
            if found is not None:
                return found
        return None
    return path, getattr(detail, "code", None) or "invalid", str(detail)


def error_answer(exc) -> tuple[int, dict, dict] | None:
    """(status, body, headers) of the error format for an exception a client caused — an
    `ExchangeError` or one of DRF's — or None for anything else (a bug). Shared by the REST views
    (`exception_handler`) and the WebSocket API, which sends the same body."""
    if isinstance(exc, ExchangeError):
        return exc.status, error_body(exc.status, exc.code, exc.field, exc.message), {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait is not None:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))

    if isinstance(exc, exceptions.ValidationError):
        field, code, message = first_error(exc.detail)
    else:
        field = None
        code = getattr(exc.detail, "code", None) or exc.default_code
        message = str(exc.detail)
    return exc.status_code, error_body(exc.status_code, code, field, message), headers


def exception_handler(exc, context):
    answer = error_answer(exc)
    if answer is None:
        return None  # a bug: Django answers 500 (in the error format under /api/, see handler500)
    status, body, headers = answer
    set_rollback()
    return Response(body, status=status, headers=headers)


# --- Django-level handlers (wired in flashbook_site/urls.py) ------------------------------------


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def handler400(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body(400, "bad_request", None, "Bad request."), status=400)
    return defaults.bad_request(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return JsonResponse(
            error_body(403, "permission_denied", None, "Permission denied."), status=403
        )
    return defaults.permission_denied(request, exception)


def api_not_found(request, *args, **kwargs):
    """Every path under /api/ that no route takes."""
    return JsonResponse(error_body(404, "not_found", None, "No such endpoint."), status=404)


def handler404(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body(404, "not_found", None, "No such endpoint."), status=404)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return JsonResponse(
            error_body(500, "server_error", None, "Internal server error."), status=500
        )
    return defaults.server_error(request)
