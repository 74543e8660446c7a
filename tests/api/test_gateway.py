"""The gateway itself: replace bounds, an unknown journal outcome, Redis unreachable, cancel-all of
orders only the journal has, the reserved client order id prefix, the caches, transactions."""

import asyncio
from decimal import Decimal

import flashbook_engine
import pytest
import redis
from asgiref.sync import async_to_sync

from exchange import selectors
from exchange.errors import InvalidInput, Unavailable
from exchange.models import Order, OrderStatus
from exchange.orders import gateway, journal
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


submit = gateway.blocking(gateway.order_submit)


def sync(function):
    return gateway.blocking(function)


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
        sync(gateway.order_replace)(account=account, order=order, **kwargs)
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
        sync(gateway.order_replace)(
            account=account, order=order, quantity=Decimal(flashbook_engine.MAX_QTY + 1)
        )
    assert journal_length(redis_client, "ACME") == 0
    sync(gateway.order_replace)(account=account, order=order, quantity=Decimal(20), price="99.40")
    assert journal_entries(redis_client, "ACME") == [
        {"t": "replace", "id": "1", "acct": str(account.pk), "px": "9940", "qty": "20"}
    ]


def test_a_journal_timeout_means_outcome_unknown_and_writes_nothing(alice, instrument, monkeypatch):
    async def timeout(symbol, new):
        raise redis.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(journal, "aappend_new", timeout)
    account = account_for_user(alice)
    with pytest.raises(Unavailable) as exc:
        submit(account=account, request=_request(client_order_id="t-1"))
    assert exc.value.code == "outcome_unknown"
    assert "unknown" in exc.value.message and "t-1" in exc.value.message
    assert order_count() == 0


def test_redis_unreachable_is_503_and_writes_nothing(alice, instrument, monkeypatch):
    async def refused(symbol, new):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(journal, "aappend_new", refused)
    account = account_for_user(alice)
    with pytest.raises(Unavailable) as exc:
        submit(account=account, request=_request(client_order_id="t-2"))
    assert exc.value.code == "unavailable"
    assert order_count() == 0


def test_cancel_all_includes_orders_only_the_journal_has(alice, instrument, redis_client):
    account = account_for_user(alice)
    _order(account, instrument, order_id=101, status=OrderStatus.NEW)
    _order(account, instrument, order_id=102, status=OrderStatus.FILLED)
    journaled = submit(account=account, request=_request()).order.order_id
    assert sync(gateway.order_cancel_all)(account=account) == 2
    cancels = [e for e in journal_entries(redis_client, "ACME") if e["t"] == "cancel"]
    assert sorted(int(entry["id"]) for entry in cancels) == sorted([101, journaled])


def test_the_engine_client_order_id_prefix_is_reserved(api, instrument, redis_client):
    body = dict(LIMIT_BUY, client_order_id="engine-ACME-7")
    response = api.post("/api/v1/orders/", body, format="json")
    assert_error(response, 400, "invalid_client_order_id", "client_order_id")
    assert order_count() == 0
    assert journal_length(redis_client, "ACME") == 0


def test_an_order_reads_nothing_from_the_database_once_its_reads_are_cached(
    alice, instrument, redis_client
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    account = account_for_user(alice)
    submit(account=account, request=_request())  # warms the instrument and account caches
    with CaptureQueriesContext(connection) as queries:
        outcome = submit(account=account, request=_request())
    assert outcome.created and outcome.order.order_id == 2
    assert queries.captured_queries == []  # and writes nothing: the journal is its only write


def test_a_halt_stored_elsewhere_is_honoured_after_the_cache_ttl(
    alice, instrument, redis_client, monkeypatch
):
    from exchange.errors import Conflict
    from exchange.models import Instrument

    account = account_for_user(alice)
    submit(account=account, request=_request())
    # As another process would: a bulk UPDATE, no signal reaches this process.
    Instrument.objects.filter(pk=instrument.pk).update(halted=True)
    monkeypatch.setattr(gateway._instruments, "fresh_for", 0.0)
    monkeypatch.setattr(gateway._instruments, "refresh_after", 0.0)
    with pytest.raises(Conflict):
        submit(account=account, request=_request())


def test_the_gateway_refuses_to_run_inside_a_transaction(alice, instrument, redis_client):
    """What it journals cannot be rolled back: a service sends it after its commit."""
    from django.db import transaction

    account = account_for_user(alice)
    with pytest.raises(RuntimeError, match="on_commit"), transaction.atomic():
        submit(account=account, request=_request())
    assert journal_length(redis_client, "ACME") == 0


def test_a_timeout_after_the_append_went_out_is_settled_never_duplicated(
    alice, instrument, redis_client, monkeypatch
):
    """Redis ran the script but its answer was lost: 503 outcome_unknown; the order is in the
    journal (the recorder settles it from the engine's events) and a retry finds it."""
    real = journal.aappend_new

    async def lost_answer(symbol, new):
        await real(symbol, new)
        raise redis.TimeoutError("Timeout reading from socket")

    account = account_for_user(alice)
    monkeypatch.setattr(journal, "aappend_new", lost_answer)
    with pytest.raises(Unavailable) as exc:
        submit(account=account, request=_request(client_order_id="lost-1"))
    assert exc.value.code == "outcome_unknown"
    monkeypatch.setattr(journal, "aappend_new", real)
    retry = submit(account=account, request=_request(client_order_id="lost-1"))
    assert not retry.created and retry.order.client_order_id == "lost-1"
    assert journal_length(redis_client, "ACME") == 1
    [entry] = journal_entries(redis_client, "ACME")
    assert int(entry["id"]) == retry.order.order_id


def test_a_retry_is_answered_with_its_order_even_once_the_instrument_is_halted(
    alice, instrument, redis_client
):
    from exchange.models import Instrument

    account = account_for_user(alice)
    first = submit(account=account, request=_request(client_order_id="before-halt"))
    Instrument.objects.filter(pk=instrument.pk).update(halted=True)
    gateway.clear_caches()
    retry = submit(account=account, request=_request(client_order_id="before-halt"))
    assert not retry.created and retry.order.order_id == first.order.order_id


def test_halting_sends_the_command_outside_any_transaction(instrument, redis_client):
    """The service journals HALT, then stores the flag; inside a transaction it refuses."""
    from django.db import transaction

    from exchange.models import Instrument
    from exchange.services import instrument_halt_set

    with pytest.raises(RuntimeError, match="on_commit"), transaction.atomic():
        instrument_halt_set(instrument=instrument, halted=True)
    assert journal_length(redis_client, "ACME") == 0
    assert not Instrument.objects.get(pk=instrument.pk).halted
    instrument_halt_set(instrument=instrument, halted=True)
    assert journal_entries(redis_client, "ACME") == [{"t": "halt"}]
    assert Instrument.objects.get(pk=instrument.pk).halted


def test_a_reply_is_matched_to_the_command_and_order_it_answers():
    """`journal.reply_key_of`: a reply names its command by its first order event, whatever book
    status events come before it, so a NEW, a CANCEL and a REPLACE of one order never take each
    other's answers."""
    book = flashbook_engine.OrderBook("ACME")
    assert journal.reply_key_of(book.new_order(7, 1, "buy", 100, 5)) == ("new", 7)
    assert journal.reply_key_of(book.new_order(7, 1, "buy", 100, 5)) == ("new", 7)  # duplicate
    assert journal.reply_key_of(book.replace(7, 1, qty=2)) == ("replace", 7)
    assert journal.reply_key_of(book.replace(7, 1, price=-1)) == ("replace", 7)  # refused
    halted = book.halt()
    assert journal.reply_key_of(halted) is None  # a book command: nobody's answer
    assert journal.reply_key_of(halted + book.cancel(7, 1)) == ("cancel", 7)
    assert journal.reply_key_of(book.cancel(7, 1)) == ("cancel", 7)  # refused: gone already
    assert journal.reply_key_of(book.cancel(8, 2)) == ("cancel", 8)


def test_two_cancels_of_one_order_are_answered_in_journal_order(engine, instrument, api, alice):
    """Two cancels of one order in flight from one loop, both waiting: the engine answers them
    in journal order, and each caller gets its own answer (the first CANCELED, the second
    refused: the order is gone)."""
    placed = api.post("/api/v1/orders/", {**LIMIT_BUY, "wait": True}, format="json").json()
    assert placed["status"] == "NEW"
    account = account_for_user(alice)
    order = selectors.order_get(account=account, order_id=placed["id"])

    async def both():
        return await asyncio.gather(
            gateway.order_cancel(account=account, order=order, wait=5.0),
            gateway.order_cancel(account=account, order=order, wait=5.0),
        )

    first, second = async_to_sync(both)()
    assert (first.status, first.refused) == (OrderStatus.CANCELED, "")
    assert second.refused == "UNKNOWN_ORDER"
