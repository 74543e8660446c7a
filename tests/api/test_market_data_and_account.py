"""Instruments, the L2 book from the engine's book key, trades, candles, the account with its
positions and P&L, and fills. Decimals are strings everywhere."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from exchange.errors import Conflict, InvalidInput
from exchange.models import Account, Fill, Order, OrderStatus, Position, Trade
from exchange.protocol import keys
from exchange.selectors import account_limits
from exchange.services import (
    account_create,
    account_for_user,
    account_limits_set,
)

from .support import assert_error, make_instrument

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)


def write_book(redis_client, symbol="ACME", *, seq=42, bids=(), asks=(), halted=False):
    book = {
        "symbol": symbol,
        "seq": seq,
        "halted": halted,
        "ts_ms": 1_767_600_000_000,
        "bids": [list(level) for level in bids],
        "asks": [list(level) for level in asks],
    }
    redis_client.set(keys.key("book", symbol), json.dumps(book))


def add_trade(instrument, seq, price, qty, at, side="buy"):
    return Trade.objects.create(
        instrument=instrument,
        seq=seq,
        price=Decimal(price),
        quantity=Decimal(qty),
        aggressor_side=side,
        maker_order_id=seq * 10,
        taker_order_id=seq * 10 + 1,
        executed_at=at,
    )


def test_instruments(api, instrument):
    listed = api.get("/api/v1/instruments/").json()
    assert listed == [
        {
            "symbol": "ACME",
            "name": "ACME Corp.",
            "tick_size": "0.01",
            "lot_size": "1",
            "min_order_qty": "1",
            "max_order_qty": "10000",
            "reference_price": "100.00",  # to the tick
            "price_band_pct": "0",
            "volatility_move_pct": "0",
            "volatility_window_seconds": 300,
            "volatility_pause_seconds": 30,
            "maker_fee_bps": 0,
            "taker_fee_bps": 0,
            "enabled": True,
            "halted": False,
        }
    ]
    assert api.get("/api/v1/instruments/ACME/").json() == listed[0]


def test_the_book_before_the_engine_published_it(api, instrument):
    assert api.get("/api/v1/instruments/ACME/book/").json() == {
        "symbol": "ACME",
        "seq": 0,
        "halted": False,
        "available": False,
        "updated_at": None,
        "bids": [],
        "asks": [],
        "band": None,
        "paused_until": None,
    }


def test_the_book_in_decimals(api, redis_client):
    make_instrument(tick_size=Decimal("0.05"), lot_size=Decimal("0.1"))
    write_book(
        redis_client, bids=[(1999, 12), (1998, 40), (1990, 1)], asks=[(2001, 7)], halted=True
    )

    book = api.get("/api/v1/instruments/ACME/book/").json()

    assert book["seq"] == 42
    assert book["available"] is True
    assert book["halted"] is True
    assert book["updated_at"].startswith("2026-01-05T08:00:00")
    # To the tick (0.05: two places) and the lot (0.1: one place).
    assert book["bids"] == [["99.95", "1.2"], ["99.90", "4.0"], ["99.50", "0.1"]]
    assert book["asks"] == [["100.05", "0.7"]]
    shallow = api.get("/api/v1/instruments/ACME/book/", {"depth": 1}).json()
    assert shallow["bids"] == [["99.95", "1.2"]]


def test_trades_newest_first_with_a_cursor(api, instrument):
    for seq in range(1, 8):
        add_trade(instrument, seq, f"100.{seq:02d}", "2", T0 + timedelta(seconds=seq))

    page = api.get("/api/v1/instruments/ACME/trades/", {"limit": 3}).json()
    assert [t["seq"] for t in page["results"]] == [7, 6, 5]
    assert page["results"][0] == {
        "seq": 7,
        "price": "100.07",
        "quantity": "2",
        "aggressor_side": "buy",
        "executed_at": "2026-01-05T10:00:07Z",
    }
    seqs = [t["seq"] for t in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        seqs += [t["seq"] for t in page["results"]]
    assert seqs == [7, 6, 5, 4, 3, 2, 1]


def test_candles(api, instrument):
    trades = [
        # minute 10:00
        ("100.00", "1", T0 + timedelta(seconds=5)),
        ("101.00", "2", T0 + timedelta(seconds=30)),
        ("99.50", "1", T0 + timedelta(seconds=59)),
        # minute 10:01
        ("99.00", "3", T0 + timedelta(seconds=61)),
        # minute 10:07 (second 5-minute candle)
        ("102.00", "1", T0 + timedelta(minutes=7)),
        ("101.50", "1", T0 + timedelta(minutes=7, seconds=10)),
    ]
    for seq, (price, qty, at) in enumerate(trades, start=1):
        add_trade(instrument, seq, price, qty, at)

    one = api.get("/api/v1/instruments/ACME/candles/", {"interval": "1m"}).json()
    assert one["interval"] == "1m"
    assert one["candles"] == [
        {
            "start": "2026-01-05T10:00:00Z",
            "open": "100.00",
            "high": "101.00",
            "low": "99.50",
            "close": "99.50",
            "volume": "4",
            "trades": 3,
        },
        {
            "start": "2026-01-05T10:01:00Z",
            "open": "99.00",
            "high": "99.00",
            "low": "99.00",
            "close": "99.00",
            "volume": "3",
            "trades": 1,
        },
        {
            "start": "2026-01-05T10:07:00Z",
            "open": "102.00",
            "high": "102.00",
            "low": "101.50",
            "close": "101.50",
            "volume": "2",
            "trades": 2,
        },
    ]
    five = api.get("/api/v1/instruments/ACME/candles/", {"interval": "5m"}).json()["candles"]
    assert [
        (c["start"], c["open"], c["high"], c["low"], c["close"], c["volume"]) for c in five
    ] == [
        ("2026-01-05T10:00:00Z", "100.00", "101.00", "99.00", "99.00", "7"),
        ("2026-01-05T10:05:00Z", "102.00", "102.00", "101.50", "101.50", "2"),
    ]
    # `limit` counts intervals back from the latest trade.
    last_two = api.get("/api/v1/instruments/ACME/candles/", {"interval": "1m", "limit": 2})
    assert [c["start"] for c in last_two.json()["candles"]] == ["2026-01-05T10:07:00Z"]
    day = api.get("/api/v1/instruments/ACME/candles/", {"interval": "1d"}).json()["candles"]
    assert [(c["open"], c["close"], c["trades"]) for c in day] == [("100.00", "101.50", 6)]
    hour = api.get("/api/v1/instruments/ACME/candles/", {"interval": "1h"}).json()["candles"]
    assert [(c["start"], c["high"], c["low"]) for c in hour] == [
        ("2026-01-05T10:00:00Z", "102.00", "99.00")
    ]
    # Seconds: the three trades of minute 10:00 at :05, :30 and :59 are three 15 s candles.
    fifteen = api.get("/api/v1/instruments/ACME/candles/", {"interval": "15s"}).json()["candles"]
    assert [(c["start"], c["open"], c["volume"]) for c in fifteen] == [
        ("2026-01-05T10:00:00Z", "100.00", "1"),
        ("2026-01-05T10:00:30Z", "101.00", "2"),
        ("2026-01-05T10:00:45Z", "99.50", "1"),
        ("2026-01-05T10:01:00Z", "99.00", "3"),
        ("2026-01-05T10:07:00Z", "102.00", "2"),
    ]
    five_s = api.get("/api/v1/instruments/ACME/candles/", {"interval": "5s"}).json()["candles"]
    assert [c["start"][-9:] for c in five_s] == [
        "10:00:05Z",
        "10:00:30Z",
        "10:00:55Z",
        "10:01:00Z",
        "10:07:00Z",
        "10:07:10Z",
    ]


def test_candles_without_trades(api, instrument):
    assert api.get("/api/v1/instruments/ACME/candles/").json() == {
        "symbol": "ACME",
        "interval": "1m",
        "candles": [],
    }


def test_a_new_account_has_the_initial_cash(api, alice, settings):
    body = api.get("/api/v1/account/").json()
    assert (body["name"], body["cash"], body["equity"], body["positions"]) == (
        "alice",
        "100000.00",
        "100000.00",
        [],
    )
    assert account_for_user(alice).pk == body["id"]


def test_account_positions_pnl_and_equity(api, alice, instrument, redis_client):
    globex = make_instrument("GLOBEX", reference_price=Decimal("50"))
    account = account_for_user(alice)
    account.cash = Decimal("90000")
    account.save()
    Position.objects.create(
        account=account,
        instrument=instrument,
        quantity=Decimal("10"),
        cost_basis=Decimal("950"),
        realized_pnl=Decimal("12.5"),
    )
    Position.objects.create(
        account=account,
        instrument=globex,
        quantity=Decimal("-4"),
        cost_basis=Decimal("-208"),
        realized_pnl=Decimal("-2"),
    )
    # ACME is marked at the mid (99.5 + 100.5) / 2 = 100; GLOBEX has no book: its last trade.
    write_book(redis_client, bids=[(9950, 1)], asks=[(10050, 1)])
    add_trade(globex, 1, "51", "1", T0)

    body = api.get("/api/v1/account/").json()

    assert body["positions"] == [
        {
            "symbol": "ACME",
            "quantity": "10",
            "cost_basis": "950.00",
            "average_price": "95.00",
            "realized_pnl": "12.50",
            "fees_paid": "0.00",
            "mark_price": "100.00",
            "market_value": "1000.00",
            "unrealized_pnl": "50.00",
        },
        {
            "symbol": "GLOBEX",
            "quantity": "-4",
            "cost_basis": "-208.00",
            "average_price": "52.00",
            "realized_pnl": "-2.00",
            "fees_paid": "0.00",
            "mark_price": "51.00",
            "market_value": "-204.00",
            "unrealized_pnl": "4.00",
        },
    ]
    assert body["cash"] == "90000.00"
    assert body["equity"] == "90796.00"  # 90000 + 1000 - 204
    assert body["realized_pnl"] == "10.50"
    assert body["unrealized_pnl"] == "54.00"


def test_position_money_is_exact_and_written_to_the_cent(api, alice, instrument, redis_client):
    """The -0.19999992 a client saw: 3 bought at 1.00, 1.01, 1.01 (3.02), 1 sold. The cost basis
    left is whole cents (2.01), so the unrealized P&L at 0.95 is -0.11 exactly, not an amount
    computed from an average rounded to 8 places; money that is zero is "0.00", never "0E-8"."""
    account = account_for_user(alice)
    account.cash = Decimal("0E-8")
    account.save()
    Position.objects.create(
        account=account,
        instrument=instrument,
        quantity=Decimal("2"),
        cost_basis=Decimal("2.01000000"),
        realized_pnl=Decimal("-0.07000000"),
    )
    write_book(redis_client, bids=[(94, 1)], asks=[(96, 1)])  # mark 0.95

    body = api.get("/api/v1/account/").json()

    assert body["positions"] == [
        {
            "symbol": "ACME",
            "quantity": "2",
            "cost_basis": "2.01",
            "average_price": "1.005",  # to the tick, and the half cent it has
            "realized_pnl": "-0.07",
            "fees_paid": "0.00",
            "mark_price": "0.95",
            "market_value": "1.90",
            "unrealized_pnl": "-0.11",
        }
    ]
    assert (body["cash"], body["equity"]) == ("0.00", "1.90")
    assert (body["realized_pnl"], body["unrealized_pnl"]) == ("-0.07", "-0.11")


def test_fills_are_private_and_paginated(api, bob_api, alice, instrument):
    account = account_for_user(alice)
    order = Order.objects.create(
        instrument=instrument,
        account=account,
        order_id=1,
        client_order_id="c1",
        side="buy",
        order_type="limit",
        time_in_force="gtc",
        price=Decimal("100"),
        quantity=Decimal("5"),
        filled_quantity=Decimal("3"),
        status=OrderStatus.PARTIALLY_FILLED,
    )
    for seq in (1, 2, 3):
        trade = add_trade(instrument, seq, "100", "1", T0 + timedelta(seconds=seq))
        Fill.objects.create(
            trade=trade,
            order=order,
            account=account,
            instrument=instrument,
            role="maker",
            side="buy",
            price=Decimal("100"),
            quantity=Decimal("1"),
            executed_at=trade.executed_at,
        )

    page = api.get("/api/v1/account/fills/", {"limit": 2}).json()
    assert [f["trade_seq"] for f in page["results"]] == [3, 2]
    assert page["results"][0]["order_id"] == order.pk
    assert page["results"][0]["price"] == "100.00"
    assert api.get(page["next"]).json()["results"][0]["trade_seq"] == 1
    assert api.get("/api/v1/account/fills/", {"symbol": "OTHER"}).json()["results"] == []
    assert bob_api.get("/api/v1/account/fills/").json()["results"] == []

    detail = api.get(f"/api/v1/orders/{order.pk}/").json()
    assert detail["status"] == "PARTIALLY_FILLED"
    assert detail["remaining_quantity"] == "2"
    assert detail["fills"] == [{"price": "100.00", "quantity": "1", "role": "maker"}] * 3
    assert_error(bob_api.get(f"/api/v1/orders/{order.pk}/"), 404, "unknown_order")


def test_an_account_name_taken_by_an_agent_gets_a_suffix(alice):
    from exchange.models import Account

    Account.objects.create(name="alice")
    account = account_for_user(alice)
    assert account.name == f"alice-{alice.pk}"
    assert account_for_user(alice) == account


def test_account_limits_set_writes_only_the_limits():
    account = Account.objects.create(name="someone", cash=Decimal(1000), initial_cash=Decimal(1000))
    stale = Account.objects.get(pk=account.pk)
    Account.objects.filter(pk=account.pk).update(cash=Decimal(900))  # the recorder, meanwhile
    account_limits_set(account=stale, max_position=7, min_bankroll=Decimal(10))
    account.refresh_from_db()
    assert (account.cash, account.default_max_position, account.min_bankroll) == (
        Decimal(900),
        7,
        Decimal(10),
    )
    with pytest.raises(InvalidInput) as caught:
        account_limits_set(account=account, max_order_qty=-5)
    assert caught.value.field == "max_order_qty"
    assert account_limits(Account.objects.get(pk=account.pk)) == {
        "initial_cash": Decimal(1000),
        "min_bankroll": Decimal(10),
        "max_position": 7,
        "max_order_qty": 100_000,
    }
    created = account_create(name="house", initial_cash=Decimal("5"), max_position=3)
    assert (created.cash, created.initial_cash, created.default_max_position) == (
        Decimal(5),
        Decimal(5),
        3,
    )
    with pytest.raises(Conflict):
        account_create(name="house", initial_cash=Decimal("5"))
