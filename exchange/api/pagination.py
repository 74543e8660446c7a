"""Cursor pagination (stable under inserts, cheap at any depth) on integer keys, with a
`limit` query parameter and a 400 `invalid_cursor` for a cursor we did not hand out."""

from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination

from exchange.errors import InvalidInput


class _IntegerCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

    def get_page_size(self, request):
        """`limit`: 1 to 1000 (default 100); anything else is a 400, not silently the default."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise InvalidInput(
                f"limit must be a whole number from 1 to {self.max_page_size}.",
                field="limit",
                code="invalid",
            )
        return int(raw)

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

    def paginate_orders(self, orders, request, view=None) -> list:
        """A page of `selectors.order_list`: its recorded rows and the orders only the journal
        has yet, merged by id (newest first), `limit` of them. Only `next` links: a client pages
        from the newest order down."""
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.cursor = self.decode_cursor(request)
        rows, pending = orders.recorded, orders.pending
        if self.cursor is not None and self.cursor.position is not None:
            below = int(self.cursor.position)
            rows = rows.filter(pk__lt=below)
            pending = [order for order in pending if order.pk < below]
        merged = sorted([*rows[: self.page_size + 1], *pending], key=lambda order: -order.pk)
        page = merged[: self.page_size]
        self.has_next = len(merged) > self.page_size
        self.has_previous = False
        self._next_position = page[-1].pk if self.has_next else None
        return page

    def get_next_link(self):
        position = getattr(self, "_next_position", _UNSET)
        if position is _UNSET:
            return super().get_next_link()
        if position is None:
            return None
        return self.encode_cursor(Cursor(offset=0, reverse=False, position=position))

    def get_previous_link(self):
        if hasattr(self, "_next_position"):
            return None
        return super().get_previous_link()


_UNSET = object()
