"""`exchange.recorder.bulk_sql`: many rows per statement on PostgreSQL, `executemany` elsewhere —
the same rows either way (the suite runs on both databases)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction

from exchange.models import Account, Order, Position, Trade
from exchange.recorder import bulk_sql

from .support import make_account, make_instrument

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def stamp(moment: datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def test_insert_writes_every_row_and_column():
    instrument = make_instrument("BULK")
    fields = [
        "instrument",
        "seq",
        "price",
        "quantity",
        "aggressor_side",
        "maker_order_id",
        "taker_order_id",
        "executed_at",
    ]
    rows = [
        (
            instrument.pk,
            seq,
            Decimal("100.25") + seq,
            Decimal(seq),
            side,
            10 + seq,
            20 + seq,
            stamp(MOMENT),
        )
        for seq, side in [(1, "buy"), (2, "sell"), (3, "buy")]
    ]
    bulk_sql.insert(Trade, fields, rows)
    got = list(
        Trade.objects.order_by("seq").values_list(
            "seq", "price", "quantity", "aggressor_side", "maker_order_id", "executed_at"
        )
    )
    assert got == [
        (1, Decimal("101.25"), Decimal(1), "buy", 11, MOMENT),
        (2, Decimal("102.25"), Decimal(2), "sell", 12, MOMENT),
        (3, Decimal("103.25"), Decimal(3), "buy", 13, MOMENT),
    ]


def test_insert_of_nothing_writes_nothing():
    bulk_sql.insert(Trade, ["seq"], [])
    assert not Trade.objects.exists()


def test_update_sets_only_the_rows_named_and_takes_nulls():
    instrument = make_instrument("BULK")
    accounts = [make_account(f"bulk{i}") for i in range(3)]
    positions = [Position.objects.create(account=a, instrument=instrument) for a in accounts]
    fields = ["quantity", "cost_basis", "realized_pnl", "updated_at"]
    rows = [
        (Decimal("5"), Decimal("99.5"), Decimal("-1.25"), stamp(MOMENT), positions[2].pk),
        (Decimal("-3"), Decimal("101"), Decimal("0"), stamp(MOMENT), positions[0].pk),
    ]
    bulk_sql.update(Position, fields, rows)
    got = {
        p.pk: (p.quantity, p.cost_basis, p.realized_pnl, p.updated_at)
        for p in Position.objects.all()
    }
    assert got[positions[0].pk] == (Decimal("-3"), Decimal("101"), Decimal("0"), MOMENT)
    assert got[positions[2].pk] == (Decimal("5"), Decimal("99.5"), Decimal("-1.25"), MOMENT)
    assert got[positions[1].pk][:3] == (Decimal(0), Decimal(0), Decimal(0))  # untouched


def test_update_in_key_order_takes_rows_in_any_order():
    accounts = [make_account(f"cash{i}") for i in range(4)]
    rows = [(Decimal(1000 + i), a.pk) for i, a in reversed(list(enumerate(accounts)))]
    with transaction.atomic():
        bulk_sql.update_in_key_order(Account, ["cash"], rows)
    cash = dict(Account.objects.filter(pk__in=[a.pk for a in accounts]).values_list("pk", "cash"))
    assert cash == {a.pk: Decimal(1000 + i) for i, a in enumerate(accounts)}


def test_a_column_of_nulls_is_typed():
    """On PostgreSQL an array of nothing but NULLs has no type of its own: the cast gives it."""
    instrument = make_instrument("BULK")
    account = make_account("nulls")
    orders = [
        Order.objects.create(
            instrument=instrument,
            account=account,
            order_id=i,
            client_order_id=f"c{i}",
            side="buy",
            order_type="limit",
            time_in_force="GTC",
            price=Decimal("100"),
            quantity=Decimal("2"),
            average_fill_price=Decimal("100"),
        )
        for i in (1, 2)
    ]
    bulk_sql.update(Order, ["order_id", "average_fill_price"], [(None, None, o.pk) for o in orders])
    assert list(Order.objects.values_list("order_id", "average_fill_price")) == [(None, None)] * 2


def _orders(instrument, account, ids, prefix="c"):
    return [
        Order.objects.create(
            instrument=instrument,
            account=account,
            order_id=i,
            client_order_id=f"{prefix}{i}",
            side="buy" if i % 2 else "sell",
            order_type="limit",
            time_in_force="GTC",
            price=Decimal("100.25") + i,
            quantity=Decimal(i),
            average_fill_price=None if i % 3 else Decimal("99.5"),
        )
        for i in ids
    ]


SELECTED = ("pk", "instrument_id", "order_id", "side", "price", "average_fill_price", "quantity")


def test_select_unique_finds_the_rows_of_the_keys_as_values_list_gives_them():
    instrument, other = make_instrument("BULK"), make_instrument("OTHER")
    account = make_account("select")
    _orders(instrument, account, range(1, 8))
    _orders(other, account, range(1, 8), prefix="o")  # the same exchange ids, another book
    keys = [6, 2, 3, 99]
    got = bulk_sql.select_unique(Order, SELECTED, "order_id", keys, instrument_id=instrument.pk)
    expected = Order.objects.filter(instrument=instrument, order_id__in=[2, 3, 6]).values_list(
        *SELECTED
    )
    assert sorted(got) == sorted(expected)
    assert len(got) == 3 and {row[1] for row in got} == {instrument.pk}


def test_select_unique_by_primary_key_and_past_one_chunk():
    instrument = make_instrument("BULK")
    orders = _orders(instrument, make_account("select"), range(1, 1202))
    keys = [*reversed([o.pk for o in orders]), 10**9]
    got = bulk_sql.select_unique(Order, ("pk", "order_id"), "pk", keys)
    assert sorted(got) == [(o.pk, o.order_id) for o in orders]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans: PostgreSQL only")
def test_select_unique_probes_the_index_of_a_table_never_analyzed():
    """The recorder's reads by exchange id, on a big book the planner has no statistics for: it
    believed `instrument_id = 1` to be a few rows and read all of them for every batch."""
    instrument, account = make_instrument("BULK"), make_account("plans")
    fields = ["instrument", "account", "order_id", "client_order_id", "side", "order_type"]
    fields += ["time_in_force", "price", "quantity", "filled_quantity", "status", "post_only"]
    fields += ["reject_reason", "created_at", "updated_at"]
    shared = ("buy", "limit", "GTC", 1, 1, 0, "NEW", False, "", stamp(MOMENT), stamp(MOMENT))
    rows = [(instrument.pk, account.pk, i, f"p{i}", *shared) for i in range(1, 20_001)]
    bulk_sql.insert(Order, fields, rows)
    sql = bulk_sql._select_unique_sql(Order, SELECTED, "order_id", ("instrument_id",))
    keys = list(range(5_000, 5_500))
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [Order._meta.db_table])
        assert cursor.fetchone()[0] < 0  # never analyzed
        cursor.execute("EXPLAIN " + sql, [keys, instrument.pk])
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "Index Scan using unique_exchange_order_id" in plan, plan
    assert "Seq Scan" not in plan and "Bitmap" not in plan and "Hash" not in plan, plan
    book = instrument.pk
    found = bulk_sql.select_unique(Order, ["order_id"], "order_id", keys, instrument_id=book)
    assert sorted(found) == [(k,) for k in keys]


def test_select_unique_of_no_keys_reads_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert bulk_sql.select_unique(Order, SELECTED, "pk", []) == []


@pytest.mark.django_db(transaction=True)
def test_key_order_locks_do_not_wait_for_foreign_key_checks():
    """The gateway inserts orders (whose foreign-key checks share-lock their accounts) while a
    recorder updates cash: the recorder's locks must be the ones an UPDATE of non-key columns
    takes, which those checks do not conflict with, else the two can deadlock."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    import psycopg

    accounts = [make_account(f"lock{i}") for i in range(2)]
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as other:  # a transaction holding a foreign-key check's lock
        other.execute(
            f"SELECT 1 FROM {bulk_sql.table(Account)} WHERE id = %s FOR KEY SHARE",
            [accounts[1].pk],
        )
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            bulk_sql.update_in_key_order(
                Account, ["cash"], [(Decimal(7), accounts[1].pk), (Decimal(8), accounts[0].pk)]
            )
        other.rollback()
    cash = dict(Account.objects.filter(pk__in=[a.pk for a in accounts]).values_list("pk", "cash"))
    assert cash == {accounts[0].pk: Decimal(8), accounts[1].pk: Decimal(7)}
