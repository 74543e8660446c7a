"""The API's one request parser: JSON, bounded in size, and refusing what Python's `json` would let
through but the database could not store (lone UTF-16 surrogates from `\\ud800` escapes)."""

import json
import re

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


# In a body decoded from UTF-8 (whose decoder refuses surrogates) a lone surrogate can only come
# from a `\uD800` to `\uDFFF` escape, so the walk below runs only for a text with one (walking every
# body was ~10 % of validating an order). Other charsets are always walked.
_UTF8 = frozenset({"utf-8", "utf8", "UTF-8", "UTF8"})
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


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
        text = raw.decode(encoding)
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, LookupError, RecursionError) as exc:
        raise ParseError(f"JSON parse error: {exc}") from None
    may_have = encoding not in _UTF8 or _SURROGATE_ESCAPE.search(text) is not None
    if may_have and _has_surrogates(data):
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
