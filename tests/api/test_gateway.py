"""The gateway itself: replace bounds, an unknown journal outcome, cancel-all of journaled PENDING
orders, the reserved client order id prefix, the instrument cache."""

from decimal import Decimal

import flashbook_engine
import pytest
import redis

from exchange import gateway, journal
from exchange.errors import InvalidInput, Unavailable
from exchange.models import Order, OrderStatus
from exchange.services import account_for_user

from .support import LIMIT_BUY, assert_error, journal_entries, journal_length, order_count


def _order(account, instrument, *, order_id=1, status=OrderStatus.NEW, **extra) -> Order:
    fields = {
        "side": "buy",
        "order_type": "limit",
        "time_in_force": "gtc",
        "price": Decimal("99.50"),
        "quantity": Decimal("10"),
    }
    fields.update(extra)
    return Order.objects.create(
        instrument=instrument,
        account=account,
        client_order_id=f"c{order_id}-{status}",
        order_id=order_id,
        status=status,
        **fields,
    )


def _request(**overrides) -> gateway.OrderRequest:
    fields = {"symbol": "ACME", "side": "buy", "price": Decimal("99.50"), "quantity": Decimal(10)}
    fields.update(overrides)
    return gateway.OrderRequest(**fields)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"quantity": "10001"}, "quantity"),  # above the instrument's max order quantity
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "1.5"}, "quantity"),
        ({"quantity": "600"}, "quantity"),  # above the account's max order quantity (set below)
        ({"price": str(flashbook_engine.MAX_PRICE + 1)}, "price"),  # beyond the engine's range
        ({"price": "99.505"}, "price"),
    ],
)
def test_replace_checks_the_same_bounds_as_a_new_order(
    alice, instrument, redis_client, kwargs, field
):
    account = account_for_user(alice)
    account.max_order_qty = 500
    account.save()
    order = _order(account, instrument)
    with pytest.raises(InvalidInput) as exc:
        gateway.order_replace(account=account, order=order, **kwargs)
    assert exc.value.field == field
    assert journal_length(redis_client, "ACME") == 0


def test_replace_quantity_above_the_engine_limit_is_refused(alice, instrument, redis_client):
    account = account_for_user(alice)
    instrument.max_order_qty = Decimal(flashbook_engine.MAX_QTY + 10)
    instrument.save()
    account.max_order_qty = flashbook_engine.MAX_QTY + 10
    account.save()
    order = _order(account, instrument)
    with pytest.raises(InvalidInput):
        gateway.order_replace(
            account=account, order=order, quantity=Decimal(flashbook_engine.MAX_QTY + 1)
        )
    assert journal_length(redis_client, "ACME") == 0
    gateway.order_replace(account=account, order=order, quantity=Decimal(20), price="99.40")
    assert journal_entries(redis_client, "ACME") == [
        {"t": "replace", "id": "1", "acct": str(account.pk), "px": "9940", "qty": "20"}
    ]


def test_a_journal_timeout_leaves_the_order_pending(alice, instrument, monkeypatch):
    def timeout(symbol, fields):
        raise redis.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(journal, "append_new", timeout)
    account = account_for_user(alice)
    with pytest.raises(Unavailable) as exc:
        gateway.order_submit(account=account, request=_request(client_order_id="t-1"))
    assert exc.value.code == "outcome_unknown"
    assert "unknown" in exc.value.message
    order = Order.objects.get(client_order_id="t-1")
    assert order.status == OrderStatus.PENDING and order.reject_reason == ""


def test_a_refused_connection_rejects_the_order(alice, instrument, monkeypatch):
    def refused(symbol, fields):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(journal, "append_new", refused)
    account = account_for_user(alice)
    with pytest.raises(Unavailable) as exc:
        gateway.order_submit(account=account, request=_request(client_order_id="t-2"))
    assert exc.value.code == "unavailable"
    order = Order.objects.get(client_order_id="t-2")
    assert order.status == OrderStatus.REJECTED
    assert order.reject_reason == "JOURNAL_UNAVAILABLE"


def test_cancel_all_includes_journaled_pending_orders(alice, instrument, redis_client):
    account = account_for_user(alice)
    _order(account, instrument, order_id=1, status=OrderStatus.NEW)
    _order(account, instrument, order_id=2, status=OrderStatus.PENDING)
    _order(account, instrument, order_id=None, status=OrderStatus.PENDING)  # never journaled
    _order(account, instrument, order_id=4, status=OrderStatus.FILLED)
    assert gateway.order_cancel_all(account=account) == 2
    ids = sorted(int(entry["id"]) for entry in journal_entries(redis_client, "ACME"))
    assert ids == [1, 2]


def test_the_engine_client_order_id_prefix_is_reserved(api, instrument, redis_client):
    body = dict(LIMIT_BUY, client_order_id="engine-ACME-7")
    response = api.post("/api/v1/orders/", body, format="json")
    assert_error(response, 400, "invalid_client_order_id", "client_order_id")
    assert order_count() == 0
    assert journal_length(redis_client, "ACME") == 0


def test_a_generated_client_order_id_is_not_looked_up(alice, instrument, redis_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    account = account_for_user(alice)
    gateway.order_submit(account=account, request=_request())  # warms the instrument cache
    with CaptureQueriesContext(connection) as queries:
        outcome = gateway.order_submit(account=account, request=_request())
    assert outcome.created and outcome.order.order_id == 2
    sql = [q["sql"] for q in queries.captured_queries]
    assert not any("client_order_id" in s and s.startswith("SELECT") for s in sql), sql
    assert not any('FROM "exchange_instrument"' in s for s in sql), sql


def test_a_halt_stored_elsewhere_is_honoured_after_the_cache_ttl(
    alice, instrument, redis_client, monkeypatch
):
    from exchange.errors import Conflict
    from exchange.models import Instrument

    account = account_for_user(alice)
    gateway.order_submit(account=account, request=_request())
    # As another process would: a bulk UPDATE, no signal reaches this process.
    Instrument.objects.filter(pk=instrument.pk).update(halted=True)
    monkeypatch.setattr(gateway, "INSTRUMENT_CACHE_SECONDS", 0.0)
    with pytest.raises(Conflict):
        gateway.order_submit(account=account, request=_request())


@pytest.mark.parametrize("order_type", ["limit", "market"])
def test_the_order_store_sends_what_the_orm_would(alice, instrument, order_type):
    """The PostgreSQL lane inserts a new order's attributes as they are: for every field of the
    order the gateway builds, the ORM's preparation of the value gives it back unchanged."""
    from django.db import connection
    from django.utils import timezone

    from exchange import order_store

    if connection.vendor != "postgresql":
        pytest.skip("the lane runs on PostgreSQL only (SQLite prepares times as text)")
    account = account_for_user(alice)
    new = gateway._new_order(
        account,
        _request(order_type=order_type, **({"price": None} if order_type == "market" else {})),
        instrument,
        "c-1",
    )
    order = new.order
    now = timezone.now()
    for name in order_store._AUTO_TIMES:
        setattr(order, name, now)
    prepared = [
        f.get_db_prep_save(
            now if f.attname in order_store._AUTO_TIMES else f.pre_save(order, True), connection
        )
        for f in order_store._FIELDS
    ]
    assert [getattr(order, name) for name in order_store._ATTNAMES] == prepared
