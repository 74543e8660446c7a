"""Helpers of the API tests."""

from decimal import Decimal

import redis
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from exchange.models import Instrument, Order
from exchange.orders import journal
from exchange.protocol import keys
from exchange.services import api_token_create
from tests.recorder.support import engine_takes_on


def journal_length(client: redis.Redis, symbol: str) -> int:
    return client.xlen(keys.key("cmd", symbol))


def journal_entries(client: redis.Redis, symbol: str) -> list[dict]:
    return [fields for _, fields in client.xrange(keys.key("cmd", symbol))]


def make_instrument(symbol: str = "ACME", *, served: bool = True, **overrides) -> Instrument:
    """An instrument, with (`served`) an engine having taken it on."""
    fields = {
        "name": f"{symbol} Corp.",
        "tick_size": Decimal("0.01"),
        "lot_size": Decimal("1"),
        "min_order_qty": Decimal("1"),
        "max_order_qty": Decimal("10000"),
        "reference_price": Decimal("100"),
        "price_band_pct": Decimal("0"),  # none unless a test gives one
        # Nor a volatility guard: a test's prices jump about.
        "volatility_move_pct": Decimal("0"),
    }
    fields.update(overrides)
    instrument = Instrument.objects.create(symbol=symbol, **fields)
    if served:
        engine_takes_on(symbol)
    return instrument


def make_user(username: str, **extra):
    """A user without a usable password (hashing one is slow; tests log in with force_login)."""
    return get_user_model().objects.create_user(username=username, password=None, **extra)


def token_client(user) -> APIClient:
    _, secret = api_token_create(user=user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def assert_error(response, status: int, code: str | None = None, field: str | None = "-"):
    """The response is a failure in the API's one error format; returns its `error` object."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"status", "code", "field", "message"}, error
    assert error["status"] == status
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field != "-":
        assert error["field"] == field, error
    return error


def order_count() -> int:
    return Order.objects.count()


LIMIT_BUY = {
    "symbol": "ACME",
    "side": "buy",
    "type": "limit",
    "price": "99.50",
    "quantity": "10",
    "wait": False,
}


def record(account, order_id: int, **changes) -> Order:
    """Writes the row the recorder would write for an order only the journal has (no recorder runs
    in these tests), with `changes` (a status, say), and drops the journal's record of it."""
    from exchange.selectors import order_from_record

    pending = journal.pending_order(account.pk, order_id)
    assert pending is not None, f"order {order_id} is not in the journal's records"
    view = order_from_record(pending, Instrument.objects.get(symbol=pending.symbol))
    names = [f.attname for f in Order._meta.concrete_fields if f.attname != "instrument_id"]
    order = Order(instrument=view.instrument, **{name: getattr(view, name) for name in names})
    for name, value in changes.items():
        setattr(order, name, value)
    order.save(force_insert=True)
    journal.forget_pending([pending])
    return order
