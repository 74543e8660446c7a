"""The API's one request parser: JSON, bounded in size, and refusing what Python's `json` would let
through but the database could not store (lone UTF-16 surrogates from `\\ud800` escapes)."""

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser

MAX_BODY_BYTES = 64 * 1024


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _has_surrogates(data) -> bool:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json(raw: bytes, encoding: str = "utf-8"):
    """A request body as JSON, or ParseError."""
    try:
        data = json.loads(raw.decode(encoding), parse_constant=_reject_constant)
    except (ValueError, LookupError, RecursionError) as exc:
        raise ParseError(f"JSON parse error: {exc}") from None
    if _has_surrogates(data):
        raise ParseError("JSON parse error: strings must be valid Unicode (no lone surrogates).")
    return data


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise RequestTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        return parse_json(raw, encoding)
