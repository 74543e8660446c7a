"""The account's pages as the server renders them: its API tokens (create, shown once, list,
revoke; only its own; CSRF-protected forms), its history (the P&L series from the recorded fills,
exact) and the API guide; and the market pages' answer to a symbol the exchange does not list."""

import itertools
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from exchange.models import ApiToken, Fill, Order, Trade
from exchange.selectors import account_pnl_series, api_token_by_secret
from exchange.services import api_token_create

from .support import make_instrument, make_user

pytestmark = pytest.mark.django_db

SECRET = re.compile(r'value="(fb_[A-Za-z0-9_\-]+)"')


@pytest.fixture
def demo(db):
    return make_user("demo")[0]


@pytest.mark.parametrize("name", ["tokens", "history"])
def test_account_pages_need_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- tokens -----------------------------------------------------------------------------------


def test_create_a_token_shows_its_secret_once_and_lists_it(client, demo):
    client.force_login(demo)
    assert "No tokens yet" in client.get(reverse("tokens")).content.decode()

    response = client.post(reverse("tokens"), {"name": "  my-bot  "})
    assert response.status_code == 201
    body = response.content.decode()
    secret = SECRET.search(body).group(1)
    assert "shown this once" in body
    token = api_token_by_secret(secret)
    assert token is not None and token.user == demo and token.name == "my-bot"

    listing = client.get(reverse("tokens")).content.decode()
    assert secret not in listing  # never again
    assert "my-bot" in listing and f"{token.prefix}…" in listing
    assert "never" in listing  # not used yet
    assert reverse("token-revoke", args=[token.id]) in listing


def test_a_token_with_a_blank_name_is_refused_at_the_field(client, demo):
    client.force_login(demo)
    response = client.post(reverse("tokens"), {"name": "   "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_list_shows_only_ones_own_tokens_and_when_they_were_used(client, demo):
    other = make_user("other")[0]
    api_token_create(user=other, name="theirs")
    mine, _ = api_token_create(user=demo, name="mine")
    mine.last_used_at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    mine.save()
    client.force_login(demo)
    body = client.get(reverse("tokens")).content.decode()
    assert "mine" in body and "theirs" not in body
    assert 'datetime="2026-12-01T09:30:00+00:00"' in body


def test_revoke_ones_own_token(client, demo):
    token, secret = api_token_create(user=demo, name="old")
    client.force_login(demo)
    response = client.post(reverse("token-revoke", args=[token.id]))
    assert response.status_code == 302 and response["Location"] == reverse("tokens")
    assert api_token_by_secret(secret) is None
    assert "Token revoked" in client.get(reverse("tokens")).content.decode()


def test_another_users_token_cannot_be_revoked(client, demo):
    other = make_user("other")[0]
    token, secret = api_token_create(user=other, name="theirs")
    client.force_login(demo)
    assert client.post(reverse("token-revoke", args=[token.id])).status_code == 404
    assert api_token_by_secret(secret) is not None
    assert client.get(reverse("token-revoke", args=[token.id])).status_code == 405  # POST only


def test_token_forms_are_csrf_protected(demo):
    client = Client(enforce_csrf_checks=True)
    client.force_login(demo)
    assert client.post(reverse("tokens"), {"name": "bot"}).status_code == 403
    assert not ApiToken.objects.exists()
    token, _ = api_token_create(user=demo, name="kept")
    assert client.post(reverse("token-revoke", args=[token.id])).status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()

    # With the form's token (the page sets the cookie), both work.
    client.get(reverse("tokens"))
    csrf = client.cookies["csrftoken"].value
    response = client.post(reverse("tokens"), {"name": "bot", "csrfmiddlewaretoken": csrf})
    assert response.status_code == 201
    response = client.post(reverse("token-revoke", args=[token.id]), {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["bot"]


def test_the_menu_links_the_tokens_history_and_api_guide(client, demo):
    make_instrument("ACME")
    client.force_login(demo)
    body = client.get(reverse("trade")).content.decode()
    for name in ("tokens", "history", "api-docs"):
        assert f'href="{reverse(name)}"' in body


def test_the_api_guide_is_rendered_from_docs_api_md(client):
    response = client.get(reverse("api-docs"))  # public, as the schema is
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>The Flashbook API for programs</h1>" in body
    assert "<table>" in body and "<code>POST orders/</code>" in body


# --- unknown symbols ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["home", "trade"])
def test_an_unknown_symbol_is_a_404_that_says_so(client, demo, name):
    make_instrument("ACME")
    client.force_login(demo)
    response = client.get(reverse(name) + "?symbol=NOPE")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Unknown instrument “NOPE”" in body and "data-unknown-symbol" in body
    assert f'href="{reverse(name)}?symbol=ACME"' in body
    assert 'id="page-config"' not in body  # no other instrument's page in its place
    # Case does not matter; no symbol at all is the first instrument.
    assert client.get(reverse(name) + "?symbol=acme").status_code == 200
    assert client.get(reverse(name) + "?symbol=").status_code == 200


def test_the_trading_page_knows_the_fees(client, demo):
    make_instrument("ACME")
    client.force_login(demo)
    body = client.get(reverse("trade")).content.decode()
    assert '"maker_fee_bps": 0' in body and '"taker_fee_bps": 0' in body


# --- history ------------------------------------------------------------------------------------

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def fill(account, instrument, side, price, qty, fee, minute, trade=None, role="taker"):
    """A recorded fill of `account` (with its order and, unless given, its trade)."""
    n = next(_ids)
    at = T0 + timedelta(minutes=minute)
    order = Order.objects.create(
        instrument=instrument,
        account=account,
        order_id=n,
        client_order_id=f"o{n}",
        side=side,
        order_type="limit",
        time_in_force="gtc",
        price=Decimal(price),
        quantity=Decimal(qty),
        filled_quantity=Decimal(qty),
        average_fill_price=Decimal(price),
        status="FILLED",
    )
    if trade is None:
        trade = Trade.objects.create(
            instrument=instrument,
            seq=n,
            price=Decimal(price),
            quantity=Decimal(qty),
            aggressor_side=side,
            maker_order_id=10_000 + n,
            taker_order_id=n,
            executed_at=at,
        )
    Fill.objects.create(
        trade=trade,
        order=order,
        account=account,
        instrument=instrument,
        role=role,
        side=side,
        price=Decimal(price),
        quantity=Decimal(qty),
        fee=Decimal(fee),
        executed_at=at,
    )
    return trade


def known_fills():
    acme, beta = make_instrument("ACME"), make_instrument("BETA")
    user, account = make_user("trader")
    other = make_user("someone-else")[1]
    fill(account, acme, "buy", "100.00", "10", "0.30", 0)  # long 10, cost 1000
    fill(account, acme, "buy", "101.00", "10", "-0.10", 1, role="maker")  # long 20, cost 2010
    fill(other, acme, "sell", "500.00", "1", "0", 2)  # not this account's
    fill(account, acme, "sell", "102.00", "5", "0.15", 3)  # closes 5: 510 - 502.50
    fill(account, beta, "sell", "50.00", "4", "0", 4)  # short 4 BETA
    # A wash: both sides of one trade are the account's: fees only, the position stays.
    wash = fill(account, acme, "buy", "90.00", "3", "-0.03", 5, role="maker")
    fill(account, acme, "sell", "90.00", "3", "0.08", 5, trade=wash)
    return user, account


def test_the_pnl_series_replays_the_fills_exactly():
    _, account = known_fills()
    series = account_pnl_series(account=account)
    got = [(p.realized, p.unrealized, p.total, p.fees) for p in series]
    D = Decimal
    assert got == [
        (D("-0.30"), D("0.00"), D("-0.30"), D("0.30")),
        (D("-0.20"), D("10.00"), D("9.80"), D("0.20")),  # marked at 101: 2020 - 2010
        (D("7.15"), D("22.50"), D("29.65"), D("0.35")),  # 15 x 102 - 1507.50
        (D("7.15"), D("22.50"), D("29.65"), D("0.35")),  # BETA's short marked at its sale
        (D("7.18"), D("-157.50"), D("-150.32"), D("0.32")),  # ACME marked at 90: 1350 - 1507.50
        (D("7.10"), D("-157.50"), D("-150.40"), D("0.40")),
    ]
    assert [p.time for p in series] == [T0 + timedelta(minutes=m) for m in (0, 1, 3, 4, 5, 5)]


def test_an_account_without_fills_has_no_series(demo):
    assert account_pnl_series(account=demo.trading_account) == []


def test_the_history_page_shows_fills_orders_and_the_curve(client):
    user, _ = known_fills()
    client.force_login(user)
    response = client.get(reverse("history"))
    assert response.status_code == 200
    body = response.content.decode()
    series = response.context["pnl_series"]
    assert [p["pnl"] for p in series] == ["-0.30", "9.80", "29.65", "29.65", "-150.32", "-150.40"]
    assert 'id="pnl-series"' in body and "data-pnl-chart" in body and "js/history.js" in body
    assert 'data-pnl="total" class="down">-150.40<' in body
    assert body.count("<tr>") - body.count("<thead><tr>") == 12  # 6 fills, 6 orders
    assert "1,010.00" in body  # a fill's value, grouped, to the cent
    assert "500.00" not in body  # the other account's fill


def test_the_history_tables_are_paged(client):
    user, _ = known_fills()
    client.force_login(user)
    from exchange.pages.views import HistoryView

    per_page, HistoryView.per_page = HistoryView.per_page, 4
    try:
        body = client.get(reverse("history") + "?fills=2").content.decode()
    finally:
        HistoryView.per_page = per_page
    assert "Page 2 of 2" in body and 'rel="prev"' in body
