"""The database work of the gateway's asyncio face: group-committed writes, off-loop reads.

Under load one process has dozens of orders in flight at once. Giving each its own transaction
costs a thread hand-off, several round trips and a commit per write; here the writes that arrive
while the previous batch is being committed are queued, then committed together in one
transaction by a writer of the store (with its own database connection). Every caller still
waits for *its* write to be committed, so the guarantees are those of one write per order: the
order row exists before its command is journaled.

A write that fails alone (a client order id the account used already) fails only its caller: each
insert that can collide runs in its own savepoint. Reads (`read`) run on a small pool of other
threads, so a slow query never holds up the commits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from django.db import (
    IntegrityError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.utils import timezone

from exchange import bulk_sql
from exchange.coalesce import Coalescer
from exchange.models import Account, Order, OrderStatus

logger = logging.getLogger("flashbook.gateway")
T = TypeVar("T")
_ATTEMPTS = 3


@dataclass(frozen=True)
class _Write:
    kind: str  # "insert" or "reject"
    args: tuple


def _apply(writes: list[_Write]) -> list[Any]:
    """Commits a batch; one result per write (an exception instance for a write that failed)."""
    results: list[Any] = [None] * len(writes)
    with transaction.atomic():
        # Generated client order ids cannot collide: one multi-row INSERT for them.
        fresh = [w.args[0] for w in writes if w.kind == "insert" and w.args[1]]
        if fresh and connection.features.can_return_rows_from_bulk_insert:
            Order.objects.bulk_create(fresh)
        else:
            for order in fresh:
                order.save(force_insert=True)
        for i, write in enumerate(writes):
            if write.kind == "insert" and not write.args[1]:
                try:
                    with transaction.atomic():
                        write.args[0].save(force_insert=True)
                except IntegrityError as exc:
                    results[i] = exc
        # Rows are updated in key order — the recorder's order too — so that the two never wait
        # for each other in a cycle.
        for pk, reason in sorted(w.args for w in writes if w.kind == "reject"):
            Order.objects.filter(pk=pk).update(status=OrderStatus.REJECTED, reject_reason=reason)
    return results


def _apply_with_retries(writes: list[_Write]) -> list[Any]:
    """`_apply`, again when the database gave up on the transaction as a whole (a deadlock
    victim, a lock wait that timed out): nothing of it was kept."""
    for attempt in range(_ATTEMPTS):
        try:
            return _apply(writes)
        except OperationalError:
            # This thread's connection lives as long as the process (no request ends here to
            # close it): one the database dropped is replaced, not reused.
            if connection.connection is not None and not connection.is_usable():
                connection.close()
            if attempt == _ATTEMPTS - 1:
                raise
            for write in writes:
                if write.kind == "insert":
                    write.args[0].pk = None  # the rolled-back insert's key is not the row's
            logger.warning("order store: batch of %d retried", len(writes), exc_info=True)
    raise AssertionError("unreachable")


def _read(function: Callable[..., T], *args) -> T:
    try:
        return function(*args)
    except OperationalError:
        if connection.connection is not None and not connection.is_usable():
            connection.close()  # the next read reconnects
        raise


def _find(account: Account, client_order_id: str) -> Order | None:
    return (
        Order.objects.select_related("instrument")
        .filter(account=account, client_order_id=client_order_id)
        .first()
    )


# One writer thread per process, with its connection committing batch after batch: the inserts
# are durable before the order is journaled (they carry the client order id a retry is checked
# against). One thread for the reads (cache refreshes: a few a second). Both shared by every
# event loop of the process. (The exchange id is not written here: the recorder writes it from
# the engine's events, and the journal's pending ids serve readers until then.)
_WRITER = ThreadPoolExecutor(1, thread_name_prefix="order-store-writer")
_READER = ThreadPoolExecutor(1, thread_name_prefix="order-store-reader")
_EXECUTORS = (_WRITER, _READER)


def _thread_lane(executor: ThreadPoolExecutor) -> Coalescer[_Write, Any]:
    async def commit(batch: list[_Write]) -> list[Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, _apply_with_retries, batch)

    return Coalescer(commit)


class _PostgresLane:
    """The writer lane on PostgreSQL through psycopg's asyncio connection: no thread (whose every
    round trip would wait for the event loop to let go of the GIL) and one statement per batch of
    inserts. The SQL is built from the model's fields, as the ORM would build it."""

    def __init__(self) -> None:
        self._connection: psycopg.AsyncConnection | None = None
        self.coalescer: Coalescer[_Write, Any] = Coalescer(self._commit)

    async def _connect(self) -> psycopg.AsyncConnection:
        if self._connection is None or self._connection.closed:
            params = connection.get_connection_params()  # Django's: the same database
            params.pop("cursor_factory", None)
            params.pop("context", None)
            self._connection = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        return self._connection

    async def _commit(self, batch: list[_Write]) -> list[Any]:
        for attempt in range(_ATTEMPTS):
            try:
                return await self._apply(await self._connect(), batch)
            except psycopg.OperationalError:  # a lost connection, a deadlock victim
                if self._connection is not None:
                    await self._connection.close()
                if attempt == _ATTEMPTS - 1:
                    raise
                logger.warning("order store: batch of %d retried", len(batch), exc_info=True)
        raise AssertionError("unreachable")

    async def _apply(self, conn: psycopg.AsyncConnection, batch: list[_Write]) -> list[Any]:
        results: list[Any] = [None] * len(batch)
        inserts = [i for i, w in enumerate(batch) if w.kind == "insert"]
        if inserts:
            await self._insert(conn, batch, inserts, results)
        rejects = sorted(w.args for w in batch if w.kind == "reject")
        if rejects:
            # Each UPDATE its own transaction (autocommit), sent together (psycopg pipelines
            # executemany): one row lock at a time, so never a cycle of waits with the recorder.
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    _update_rejected_sql(), [(OrderStatus.REJECTED, r, pk) for pk, r in rejects]
                )
        return results

    async def _insert(self, conn, batch: list[_Write], indexes: list[int], results: list) -> None:
        # One statement for every row; a row whose client order id the account has used already
        # is skipped by the database (ON CONFLICT) and fails alone — as does a second row with the
        # same id in this very batch.
        rows, seen = [], {}
        now = timezone.now()  # the batch's rows are created together
        for i in indexes:
            order = batch[i].args[0]
            key = (order.account_id, order.client_order_id)
            if key in seen:
                results[i] = IntegrityError("duplicate client order id in one batch")
                continue
            seen[key] = i
            for name in _AUTO_TIMES:
                setattr(order, name, now)
            # The attributes as they are: on PostgreSQL the ORM's preparation of these fields'
            # values (keys, strings, decimals, booleans, aware times) gives them back unchanged
            # (`test_the_order_store_sends_what_the_orm_would` holds the two equal).
            rows.append([getattr(order, name) for name in _ATTNAMES])
        if not rows:
            return
        # One array per column that differs between the rows, one value for each column the rows
        # share (a new order's status, fill, times...): fewer values to encode, and a handful of
        # statement texts whatever the batch's size, so psycopg prepares each once.
        columns = list(zip(*rows, strict=True))
        shared = tuple(
            i not in _ALWAYS_ARRAYS and all(value == column[0] for value in column)
            for i, column in enumerate(columns)
        )
        params = [column[0] for column, one in zip(columns, shared, strict=True) if one]
        params += [list(column) for column, one in zip(columns, shared, strict=True) if not one]
        async with conn.cursor() as cursor:
            await cursor.execute(_insert_sql(shared), params)
            returned = await cursor.fetchall()
        inserted = {(account, client_id): pk for pk, account, client_id in returned}
        for key, i in seen.items():
            pk = inserted.get(key)
            if pk is None:
                results[i] = IntegrityError("client order id already used by the account")
            else:
                order = batch[i].args[0]
                order.pk = pk
                order._state.adding = False
                order._state.db = "default"


_FIELDS = [f for f in Order._meta.concrete_fields if not f.primary_key]
_ATTNAMES = [f.attname for f in _FIELDS]


_AUTO_TIMES = frozenset(
    f.attname for f in _FIELDS if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
)
# Never sent as one shared value, so that the statement always has an array to unnest.
_ALWAYS_ARRAYS = frozenset(i for i, f in enumerate(_FIELDS) if f.name == "client_order_id")


@functools.cache
def _insert_sql(shared: tuple[bool, ...]) -> str:
    """The batch insert: `shared[i]` says whether the i-th field is one value for every row
    (its placeholder comes first, in the select list) or an array (unnested)."""
    q = functools.partial(bulk_sql.column, Order)
    columns = ", ".join(q(f.name) for f in _FIELDS)
    types = [bulk_sql.column_type(Order, f.name) for f in _FIELDS]
    kinds = list(enumerate(zip(types, shared, strict=True)))
    select = ", ".join(f"%s::{kind}" if one else f"u.c{i}" for i, (kind, one) in kinds)
    arrays = [(i, kind) for i, (kind, one) in kinds if not one]
    unnest = ", ".join(f"%s::{kind}[]" for _, kind in arrays)
    names = ", ".join(f"c{i}" for i, _ in arrays)
    return (
        f"INSERT INTO {bulk_sql.table(Order)} ({columns}) SELECT {select} "
        f"FROM unnest({unnest}) AS u({names}) "
        f"ON CONFLICT ({q('account')}, {q('client_order_id')}) DO NOTHING "
        f"RETURNING {q('id')}, {q('account')}, {q('client_order_id')}"
    )


@functools.cache
def _update_rejected_sql() -> str:
    q = functools.partial(bulk_sql.column, Order)
    return (
        f"UPDATE {bulk_sql.table(Order)} SET {q('status')} = %s, {q('reject_reason')} = %s "
        f"WHERE {q('id')} = %s"
    )


class OrderStore:
    """The order writes of one event loop, committed in batches; its database reads."""

    def __init__(self) -> None:
        if connection.vendor == "postgresql":
            self._writes = _PostgresLane().coalescer
        else:
            self._writes = _thread_lane(_WRITER)

    async def insert(self, order: Order, *, generated_client_id: bool = True) -> Order:
        """Inserts a new order (its primary key is set on return). Raises IntegrityError when
        the account has an order with this client order id already."""
        await self._writes.submit(_Write("insert", (order, generated_client_id)))
        return order

    async def reject(self, pk: int, reason: str) -> None:
        await self._writes.submit(_Write("reject", (pk, reason)))

    async def find(self, account: Account, client_order_id: str) -> Order | None:
        return await self.read(_find, account, client_order_id)

    async def read(self, function: Callable[..., T], *args) -> T:
        """Runs a synchronous, read-only database function off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_READER, _read, function, *args)


_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OrderStore] = (
    weakref.WeakKeyDictionary()
)


def close_connections() -> None:
    """Closes the database connections of the store's threads (the next use opens new ones): for
    tests that point the database elsewhere, and for a process that forks."""
    pending = [executor.submit(connections.close_all) for executor in _EXECUTORS]
    concurrent.futures.wait(pending, timeout=10)  # a thread stuck in a query must not hang exit


def for_running_loop() -> OrderStore:
    """The running event loop's store."""
    loop = asyncio.get_running_loop()
    store = _stores.get(loop)
    if store is None:
        store = _stores[loop] = OrderStore()
    return store
