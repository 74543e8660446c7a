"""The admin (instrument halt / resume actions, read-only projections) and failures of the
dependencies: Redis down means 503 in the error format, never a 500."""

import json
from decimal import Decimal

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from exchange.api.errors import handler500
from exchange.models import Account, Instrument, Order, Position, Trade
from exchange.protocol import keys
from exchange.services import account_for_user

from .support import (
    LIMIT_BUY,
    assert_error,
    journal_entries,
    make_instrument,
    make_user,
    record,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db):
    user = make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def test_admin_actions_halt_and_resume_through_the_gateway(admin_client, instrument, redis_client):
    url = reverse("admin:exchange_instrument_changelist")
    response = admin_client.post(
        url, {"action": "halt_trading", "_selected_action": [instrument.pk]}, follow=True
    )
    assert response.status_code == 200
    assert Instrument.objects.get(pk=instrument.pk).halted
    admin_client.post(url, {"action": "resume_trading", "_selected_action": [instrument.pk]})
    assert not Instrument.objects.get(pk=instrument.pk).halted
    assert journal_entries(redis_client, "ACME") == [{"t": "halt"}, {"t": "resume"}]


def test_unticking_enabled_in_the_admin_delists_and_the_action_lists_again(
    admin_client, instrument, redis_client, django_capture_on_commit_callbacks
):
    change = reverse("admin:exchange_instrument_change", args=[instrument.pk])
    form = {
        field: getattr(instrument, field)
        for field in ("symbol", "name", "tick_size", "lot_size", "min_order_qty", "max_order_qty")
    } | {
        "reference_price": instrument.reference_price,
        "price_band_pct": instrument.price_band_pct,
        "volatility_move_pct": instrument.volatility_move_pct,
        "volatility_window_seconds": instrument.volatility_window_seconds,
        "volatility_pause_seconds": instrument.volatility_pause_seconds,
        "maker_fee_bps": instrument.maker_fee_bps,
        "taker_fee_bps": instrument.taker_fee_bps,
    }  # "enabled" left out: unticked
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(change, form)
    assert response.status_code == 302, response.content[:2000]
    assert not Instrument.objects.get(pk=instrument.pk).enabled
    # Halted, then every resting order cancelled (after the engine's rules, which every full save
    # of a listed instrument sends again: none here); and the engines' registry no longer lists it.
    assert journal_entries(redis_client, "ACME") == [
        {"t": "band", "bps": "0", "px": "10000"},
        {"t": "volatility", "bps": "0", "win": "300000", "pause": "30000"},
        {"t": "fees", "maker": "0", "taker": "0"},
        {"t": "halt"},
        {"t": "reset"},
    ]
    assert redis_client.smembers(keys.instruments_key()) == set()
    version = int(redis_client.get(keys.instruments_version_key()))

    url = reverse("admin:exchange_instrument_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"action": "list_instruments", "_selected_action": [instrument.pk]})
    listed = Instrument.objects.get(pk=instrument.pk)
    assert listed.enabled and not listed.halted
    assert journal_entries(redis_client, "ACME")[-1] == {"t": "resume"}
    assert redis_client.smembers(keys.instruments_key()) == {"ACME"}
    assert int(redis_client.get(keys.instruments_version_key())) > version

    with django_capture_on_commit_callbacks(execute=True):  # listed already: nothing to send
        admin_client.post(url, {"action": "list_instruments", "_selected_action": [instrument.pk]})
    # The rules (band, volatility, fees), halt, reset; the rules again, resume.
    assert len(journal_entries(redis_client, "ACME")) == 9


@pytest.mark.parametrize("model", ["instrument", "account", "order", "fill", "trade", "apitoken"])
def test_admin_pages_render(admin_client, api, instrument, model):
    api.post("/api/v1/orders/", LIMIT_BUY, format="json")  # an account and an order to show
    response = admin_client.get(reverse(f"admin:exchange_{model}_changelist"), {"q": "ACME"})
    assert response.status_code == 200


def test_the_recorders_tables_are_listed_without_counting_or_sorting_the_table(
    admin_client, alice, instrument, monkeypatch
):
    """Ten million orders must not make the admin slow: the list reads a page by the primary key's
    index and counts at most CAP rows (here 10 of 25), never the whole table."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from exchange.admin import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "CAP", 10)
    account = account_for_user(alice)
    for number in range(25):
        Order.objects.create(
            instrument=instrument,
            account=account,
            order_id=number + 1,
            client_order_id=f"c{number}",
            side="buy",
            order_type="limit",
            time_in_force="gtc",
            price=100,
            quantity=1,
            status="FILLED",
        )
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(reverse("admin:exchange_order_changelist"))
    assert page.status_code == 200
    order_queries = [q["sql"] for q in queries if 'FROM "exchange_order"' in q["sql"]]
    counts = [sql for sql in order_queries if "COUNT(" in sql.upper()]
    assert counts and all("LIMIT 10" in sql for sql in counts), counts
    listing = [sql for sql in order_queries if "COUNT(" not in sql.upper()]
    assert any('ORDER BY "exchange_order"."id" DESC' in sql for sql in listing), listing
    assert b"10 orders" in page.content  # the capped count, no "25 total" beside it
    assert b"25 total" not in page.content


def test_the_admin_writes_money_and_prices_to_their_precision(admin_client, alice, instrument):
    """Money to the cent, prices to the tick, quantities to the lot: never a column's raw
    "0E-8", "31.00000200" or "100.10000000"."""
    account = account_for_user(alice)
    Account.objects.filter(pk=account.pk).update(cash=Decimal("31.00000000"))
    Position.objects.create(
        account=account,
        instrument=instrument,
        quantity=Decimal("3.00000000"),
        cost_basis=Decimal("3.02000000"),
        realized_pnl=Decimal("0E-8"),
    )
    Trade.objects.create(
        instrument=instrument,
        seq=1,
        price=Decimal("100.10000000"),
        quantity=Decimal("10000.00000000"),
        aggressor_side="buy",
        maker_order_id=1,
        taker_order_id=2,
        executed_at="2026-01-05T10:00:00Z",
    )

    listing = admin_client.get(reverse("admin:exchange_account_changelist")).content.decode()
    assert ">31.00<" in listing and ">100000.00<" in listing  # cash, initial cash
    change = admin_client.get(reverse("admin:exchange_account_change", args=[account.pk]))
    page = change.content.decode()
    assert ">31.00<" in page  # read-only cash
    assert ">3.02<" in page and ">0.00<" in page  # the position's cost basis, realized P&L
    assert ">1.00666667<" in page  # its average price: to the tick, and the digits it has
    assert 'value="100000"' in page  # the editable initial cash, plain
    trades = admin_client.get(reverse("admin:exchange_trade_changelist")).content.decode()
    assert ">100.10<" in trades and ">10000<" in trades
    for text in (listing, page, trades):
        assert "0E-8" not in text and "00000<" not in text and "E+" not in text


def test_orders_and_executions_are_read_only_in_the_admin(admin_client, api, alice, instrument):
    placed = api.post("/api/v1/orders/", LIMIT_BUY, format="json").json()
    order = record(account_for_user(alice), placed["id"])
    account = admin_client.get(reverse("admin:exchange_account_change", args=[order.account_id]))
    assert account.status_code == 200
    assert b"Positions" in account.content
    change = admin_client.get(reverse("admin:exchange_order_change", args=[order.pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert admin_client.get(reverse("admin:exchange_order_add")).status_code == 403
    for model in ("fill", "trade"):
        assert admin_client.get(reverse(f"admin:exchange_{model}_add")).status_code == 403


def test_a_recorded_order_and_its_fill_read_as_numbers_in_the_admin(
    admin_client, api, alice, instrument
):
    """The change page of a read-only row shows its decimals written to their kind, and a
    32-character client order id does not push the key columns off the list."""
    long_id = "c" * 32
    placed = api.post(
        "/api/v1/orders/", {**LIMIT_BUY, "client_order_id": long_id}, format="json"
    ).json()
    order = record(
        account_for_user(alice),
        placed["id"],
        filled_quantity=Decimal("3.00000000"),
        average_fill_price=Decimal("99.50000000"),
    )
    page = admin_client.get(reverse("admin:exchange_order_change", args=[order.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    # Price and average price to the tick, quantities to the lot.
    assert text.count(">99.50<") == 2 and ">3<" in text and ">10<" in text
    assert "0E-8" not in text and "00000<" not in text
    listing = admin_client.get(reverse("admin:exchange_order_changelist")).content.decode()
    assert f'title="{long_id}">{long_id[:12]}…<' in listing
    assert f">{long_id}<" not in listing


def test_redis_down_means_503_not_500(api, instrument, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    assert_error(api.post("/api/v1/orders/", LIMIT_BUY, format="json"), 503, "unavailable")
    assert not Order.objects.exists()  # nothing half-written
    book = api.get("/api/v1/instruments/ACME/book/").json()
    assert book["available"] is False
    assert api.get("/api/v1/account/").status_code == 200


def test_an_instrument_no_engine_serves_yet_refuses_orders_at_once(api, redis_client):
    make_instrument("NEWCO", served=False)  # listed a moment ago: no engine has taken it on
    response = api.post("/api/v1/orders/", {**LIMIT_BUY, "symbol": "NEWCO"}, format="json")
    error = assert_error(response, 503, "instrument_not_served", field="symbol")
    assert "NEWCO" in error["message"]
    assert journal_entries(redis_client, "NEWCO") == []  # nothing placed, nothing PENDING
    assert api.get("/api/v1/orders/").json()["results"] == []


def test_server_errors_under_the_api_use_the_error_format():
    response = handler500(RequestFactory().get("/api/v1/orders/"))
    assert response.status_code == 500
    assert json.loads(response.content) == {
        "error": {
            "status": 500,
            "code": "server_error",
            "field": None,
            "message": "Internal server error.",
        }
    }
    assert handler500(RequestFactory().get("/")).status_code == 500
