"""Many rows in one statement: the bulk reads and writes of the recorder and the order store.

`executemany` sends one statement per row; even pipelined and prepared, each costs the database a
bind, an executor start and a protocol round of its own, which at thousands of rows a second is
most of its work. On PostgreSQL a batch goes as one array per column instead, and one statement
unnests them: `INSERT ... SELECT ... FROM unnest(...)`, `UPDATE ... FROM unnest(...)`. Elsewhere
(SQLite) rows go through `executemany`, which there costs little.

Values are what the ORM would pass to the backend (decimals and strings as they are, times through
`connection.ops.adapt_datetimefield_value`). Each array is cast to its column's type, so a column
of nothing but NULLs is typed too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence

import psycopg
from django.db import connection

# The most keys in one `IN (...)` (SQLite allows 999 parameters per statement before 3.32).
IN_CHUNK = 500


def chunks(values: Iterable) -> Iterator[list]:
    """`values` in lists of at most `IN_CHUNK`, one per `IN (...)`."""
    values = list(values)
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model) -> str:
    return quote(model._meta.db_table)


def column(model, name: str) -> str:
    return quote(model._meta.get_field(name).column)


@functools.cache
def column_type(model, name: str) -> str:
    """The column's PostgreSQL type (a foreign key's is its target's key type)."""
    return model._meta.get_field(name).db_type(connection)


def select_unique(model, columns: Sequence[str], key: str, keys: Sequence, **equal) -> list[tuple]:
    """The `columns` (field names, attnames or "pk") of the rows whose `key` is one of `keys` and
    whose other fields equal `equal`, as `values_list` gives them. `key` with `equal`'s fields
    must be unique (a primary key, a unique constraint): each key finds one row at most.

    On PostgreSQL each key is looked up on its own, through the index of that constraint, in one
    statement (a lateral subquery per unnested key, kept apart by its LIMIT): the plan does not
    depend on what the planner believes of the table. Asked as `key IN (...)` or as a join, a
    table not yet analyzed (a fresh database, a busy one before autovacuum's first analyze) was
    believed to hold a few rows of the instrument, and each batch of the recorder read all of
    them: ~15-30 ms for 500 keys instead of ~1 ms."""
    if not keys:
        return []
    if connection.vendor != "postgresql":
        found: list[tuple] = []
        rows = model.objects.order_by().filter(**equal)
        for chunk in chunks(keys):
            found += rows.filter(**{f"{key}__in": chunk}).values_list(*columns)
        return found
    sql = _select_unique_sql(model, tuple(columns), key, tuple(equal))
    return _fetch(sql, [list(keys), *equal.values()])


def insert(model, fields: Sequence[str], rows: list[tuple]) -> None:
    """Inserts `rows` (values in the order of `fields`). On PostgreSQL with `COPY`: psycopg
    formats its rows in C, where an `INSERT … FROM unnest(…)` has its arrays built by psycopg's
    Python list dumper — 8 µs of the recorder's CPU per order row against 19 (500 rows of 17
    columns a statement; the dumper was a quarter of the recorder's CPU under `make bench-agents`),
    and less of the database's time."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        columns = ", ".join(column(model, name) for name in fields)
        marks = ", ".join(["%s"] * len(fields))
        _execute_many(f"INSERT INTO {table(model)} ({columns}) VALUES ({marks})", rows)
        return
    connection.ensure_connection()
    with (
        connection.wrap_database_errors,
        psycopg.Cursor(connection.connection) as cursor,
        cursor.copy(_copy_sql(model, tuple(fields))) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def update(model, fields: Sequence[str], rows: list[tuple]) -> None:
    """Sets `fields` of the rows whose primary key ends each row's tuple, in one statement. The
    order the rows are locked in is the join's: for rows that no other transaction writes at the
    same time (or only one row at a time); otherwise `update_in_key_order`."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        update_in_key_order(model, fields, rows)
        return
    _execute_arrays(_update_sql(model, tuple(fields)), rows)


def update_in_key_order(model, fields: Sequence[str], rows: list[tuple]) -> None:
    """`update` for rows that several transactions write at once: they are locked in key order,
    so two writers never wait for each other in a cycle."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        assignments = ", ".join(f"{column(model, name)} = %s" for name in fields)
        pk = column(model, model._meta.pk.name)
        rows = sorted(rows, key=lambda row: row[-1])
        _execute_many(f"UPDATE {table(model)} SET {assignments} WHERE {pk} = %s", rows)
        return
    # A locking read sorts the rows before it locks them; then the one update, in any order. The
    # lock an UPDATE of non-key columns takes: foreign-key checks (another transaction inserting
    # rows that refer to these) do not wait for it, nor it for them.
    _execute(_lock_sql(model), [[row[-1] for row in rows]])
    _execute_arrays(_update_sql(model, tuple(fields)), rows)


@functools.cache
def _lock_sql(model) -> str:
    pk = model._meta.pk.name
    kind = column_type(model, pk)
    return (
        f"SELECT 1 FROM {table(model)} WHERE {column(model, pk)} = ANY(%s::{kind}[]) "
        f"ORDER BY {column(model, pk)} FOR NO KEY UPDATE"
    )


def _field(model, name: str):
    return model._meta.pk if name == "pk" else model._meta.get_field(name)


@functools.cache
def _select_unique_sql(model, columns: tuple[str, ...], key: str, equal: tuple[str, ...]) -> str:
    def named(name: str) -> str:
        return quote(_field(model, name).column)

    kind = _field(model, key).db_type(connection)
    conditions = "".join(f" AND {named(name)} = %s" for name in equal)
    selected = ", ".join(named(name) for name in columns)
    return (
        f"SELECT t.* FROM unnest(%s::{kind}[]) AS k(v) CROSS JOIN LATERAL "
        f"(SELECT {selected} FROM {table(model)} WHERE {named(key)} = k.v{conditions} LIMIT 1) AS t"
    )


@functools.cache
def _copy_sql(model, fields: tuple[str, ...]) -> str:
    columns = ", ".join(column(model, name) for name in fields)
    return f"COPY {table(model)} ({columns}) FROM STDIN"


@functools.cache
def _update_sql(model, fields: tuple[str, ...]) -> str:
    pk = model._meta.pk.name
    assignments = ", ".join(f"{column(model, name)} = u.c{i}" for i, name in enumerate(fields))
    return (
        f"UPDATE {table(model)} SET {assignments} FROM {_unnest(model, [*fields, pk])} "
        f"WHERE {table(model)}.{column(model, pk)} = u.c{len(fields)}"
    )


def _unnest(model, fields: Sequence[str]) -> str:
    arrays = ", ".join(f"%s::{column_type(model, name)}[]" for name in fields)
    names = ", ".join(f"c{i}" for i in range(len(fields)))
    return f"unnest({arrays}) AS u({names})"


def _execute_arrays(sql: str, rows: list[tuple]) -> None:
    _execute(sql, [list(values) for values in zip(*rows, strict=True)])


def _execute(sql: str, params: list) -> None:
    connection.ensure_connection()
    # A cursor of psycopg's own: the server binds the arrays (Django's cursors would quote every
    # value into the statement's text), and the statement, its text the same for any number of
    # rows, is prepared once.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)


def _fetch(sql: str, params: list) -> list[tuple]:
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _execute_many(sql: str, rows: list[tuple]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
