"""Cursor pagination (stable under inserts, cheap at any depth) on integer keys, with a
`limit` query parameter and a 400 `invalid_cursor` for a cursor we did not hand out."""

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from exchange.errors import InvalidInput


class _IntegerCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            cursor = False
        if cursor is False or (cursor is not None and not _is_int(cursor.position)):
            raise InvalidInput("Invalid cursor.", field="cursor", code="invalid_cursor")
        return cursor


def _is_int(value) -> bool:
    if value is None:
        return True
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True


class SeqCursorPagination(_IntegerCursorPagination):
    """Trades, newest first."""

    ordering = "-seq"


class IdCursorPagination(_IntegerCursorPagination):
    """Orders and fills, newest first."""

    ordering = "-id"
