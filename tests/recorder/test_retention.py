"""History that does not grow without end (`exchange.retention`, `manage.py prune_history`):
closed orders, their fills and unreferenced trades older than the retention go, archived first;
open orders, their fills and trades, positions and cash never do."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from exchange.errors import InvalidInput
from exchange.models import Account, Fill, Order, OrderStatus, Position, Trade
from exchange.retention import history_prune

from .support import make_account, make_instrument

pytestmark = pytest.mark.django_db

NOW = timezone.now()
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=2)


def order(instrument, account, number: int, status: str, when) -> Order:
    row = Order.objects.create(
        instrument=instrument,
        account=account,
        order_id=number,
        client_order_id=f"c-{number}",
        side="buy",
        order_type="limit",
        time_in_force="gtc",
        price=Decimal("100"),
        quantity=Decimal("5"),
        status=status,
    )
    Order.objects.filter(pk=row.pk).update(created_at=when, updated_at=when)
    return row


def trade(instrument, seq: int, when, *fills: tuple[Order, str]) -> Trade:
    row = Trade.objects.create(
        instrument=instrument,
        seq=seq,
        price=Decimal("100"),
        quantity=Decimal("1"),
        aggressor_side="buy",
        maker_order_id=seq,
        taker_order_id=seq + 1,
        executed_at=when,
    )
    for filled, role in fills:
        Fill.objects.create(
            trade=row,
            order=filled,
            account=filled.account,
            instrument=instrument,
            role=role,
            side=filled.side,
            price=row.price,
            quantity=row.quantity,
            executed_at=when,
        )
    return row


@pytest.fixture
def history(db):
    acme = make_instrument("ACME", served=False)
    alice, bob = make_account("alice"), make_account("bob")
    Position.objects.create(account=alice, instrument=acme, quantity=Decimal("3"))
    old_filled = order(acme, alice, 1, OrderStatus.FILLED, OLD)
    old_cancelled = order(acme, bob, 2, OrderStatus.CANCELED, OLD)
    old_open = order(acme, bob, 3, OrderStatus.PARTIALLY_FILLED, OLD)  # resting for 40 days
    order(acme, alice, 4, OrderStatus.REJECTED, OLD)
    recent = order(acme, alice, 5, OrderStatus.FILLED, RECENT)
    return {
        "gone_trade": trade(acme, 10, OLD, (old_filled, "taker"), (old_cancelled, "maker")),
        "open_trade": trade(acme, 11, OLD, (old_filled, "taker"), (old_open, "maker")),
        "orphan_trade": trade(acme, 12, OLD),  # another tool's orders: no fills at all
        "recent_trade": trade(acme, 13, RECENT, (recent, "taker")),
        "old_open": old_open,
        "recent": recent,
    }


def test_closed_history_older_than_the_retention_goes_and_the_rest_stays(history, tmp_path):
    cash = dict(Account.objects.values_list("name", "cash"))
    planned = history_prune(older_than=timedelta(days=30), dry_run=True, now=NOW)
    assert (planned.orders, planned.fills, planned.trades) == (3, 3, 2)
    assert Order.objects.count() == 5  # a dry run deletes nothing

    report = history_prune(older_than=timedelta(days=30), archive_dir=tmp_path, batch=2, now=NOW)
    assert (report.orders, report.fills, report.trades) == (3, 3, 2)
    assert set(Order.objects.values_list("order_id", flat=True)) == {3, 5}  # open, recent
    assert set(Trade.objects.values_list("seq", flat=True)) == {11, 13}
    # The open order's trade stays with the open order's fill; the closed order's fill in it went
    # with the closed order.
    assert list(Fill.objects.filter(trade__seq=11).values_list("order__order_id", flat=True)) == [3]
    assert Position.objects.get().quantity == Decimal("3")
    assert dict(Account.objects.values_list("name", "cash")) == cash

    def archived(table: str) -> list[dict]:
        with gzip.open(report.archive[table], "rt") as lines:
            return [json.loads(line) for line in lines]

    assert sorted(row["order_id"] for row in archived("orders")) == [1, 2, 4]
    gone, kept = history["gone_trade"].pk, history["open_trade"].pk
    assert sorted(row["trade_id"] for row in archived("fills")) == sorted([gone, gone, kept])
    assert sorted(row["seq"] for row in archived("trades")) == [10, 12]
    assert archived("orders")[0]["price"] == "100.00000000"  # decimals exact, as strings

    again = history_prune(older_than=timedelta(days=30), archive_dir=tmp_path, now=NOW)
    assert (again.orders, again.fills, again.trades) == (0, 0, 0)


def test_the_command_reads_the_setting_and_refuses_less_than_a_day(history, settings):
    settings.FLASHBOOK_RETENTION_DAYS = 30
    out = StringIO()
    call_command("prune_history", "--dry-run", stdout=out)
    assert json.loads(out.getvalue()) | {"cutoff": None} == {
        "cutoff": None,
        "dry_run": True,
        "orders": 3,
        "fills": 3,
        "trades": 2,
        "archive": {},
    }
    call_command("prune_history", "--days", "1", stdout=StringIO())
    assert set(Order.objects.values_list("order_id", flat=True)) == {3}  # RECENT was 2 days ago
    with pytest.raises(CommandError, match="at least a day"):
        call_command("prune_history", "--days", "0.5")
    with pytest.raises(InvalidInput):
        history_prune(older_than=timedelta(days=2), batch=0)
