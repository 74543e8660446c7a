"""The API's order actions, shared by every way a program reaches them: the REST views, the
order-entry fast path and the WebSocket API (`exchange.api.websocket`). Each takes an account and
the validated data of its serializer, calls the gateway (or a selector), and gives the HTTP status
and the body the REST API answers — the WebSocket API sends the same status and body — or raises
an `ExchangeError`. Asyncio, as the gateway; the REST views call them through `gateway.blocking`.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async

from exchange import selectors
from exchange.api import serializers as s
from exchange.errors import InvalidInput, NotFound
from exchange.models import Account
from exchange.orders import gateway
from exchange.orders.progress import refusal

# Built once: a serializer's construction copies its declared fields (~0.3 ms a request).
_ORDER_OUT = s.OrderDetailSerializer()
_ORDER_BRIEF = s.OrderSerializer()
_QUEUE_OUT = s.QueuePositionSerializer()

# The most open orders one `open_orders` answer lists (the REST list pages through them).
OPEN_ORDERS_MAX = 1000


async def place(account: Account, data: dict, on_journaled=None) -> tuple[int, dict]:
    """Places an order from `OrderCreateSerializer`'s validated data. 201: the engine's
    immediate outcome; 202: placed, no outcome yet; 200: a retry of a client order id the
    account used already (nothing placed). `on_journaled`: `gateway.order_submit`'s."""
    request, wait = s.order_request(data)
    try:
        outcome = await gateway.order_submit(
            account=account, request=request, wait=wait, on_journaled=on_journaled
        )
    except NotFound as exc:
        if exc.field != "symbol":
            raise
        # In a request body an unknown symbol is bad input, not a missing resource.
        raise InvalidInput(exc.message, field="symbol", code=exc.code) from exc
    if not outcome.created:
        status = 200
    elif outcome.engine:
        status = 201
    else:
        status = 202
    return status, _ORDER_OUT.to_representation(s.order_from_outcome(outcome))


def own_order(account: Account, *, order_id=None, client_order_id=None):
    """One of the account's orders by its id or its client order id; the same 404 whether it
    does not exist or is someone else's."""
    if order_id is not None:
        order = selectors.order_get(account=account, order_id=order_id)
    else:
        order = selectors.order_find_by_client_order_id(
            account=account, client_order_id=client_order_id
        )
    if order is None:
        field = None if order_id is not None else "client_order_id"
        raise NotFound("No such order.", field=field, code="unknown_order")
    return order


_own_order = sync_to_async(own_order)


def _command_answer(order, progress) -> tuple[int, dict]:
    """200 with the order as the engine's answer left it; 202 with the order as it was when the
    engine did not answer in time; the engine's refusal as a 409."""
    if progress is None:
        return 202, _ORDER_BRIEF.to_representation(order)
    if progress.refused:
        raise refusal(progress.refused)
    return 200, _ORDER_OUT.to_representation(s.order_after_command(order, progress))


async def cancel(account: Account, data: dict, on_journaled=None, **which) -> tuple[int, dict]:
    """Cancels the order `which` names (`order_id=` or `client_order_id=`), with
    `OrderCancelSerializer`'s data. `on_journaled`: `gateway.order_cancel`'s."""
    order = await _own_order(account, **which)
    progress = await gateway.order_cancel(
        account=account, order=order, wait=s.wait_seconds(data), on_journaled=on_journaled
    )
    return await sync_to_async(_command_answer)(order, progress)


async def replace(account: Account, data: dict, on_journaled=None, **which) -> tuple[int, dict]:
    """Replaces the order `which` names, with `OrderReplaceSerializer`'s data."""
    order = await _own_order(account, **which)
    progress = await gateway.order_replace(
        account=account,
        order=order,
        price=data.get("price"),
        quantity=data.get("quantity"),
        wait=s.wait_seconds(data),
        on_journaled=on_journaled,
    )
    return await sync_to_async(_command_answer)(order, progress)


async def cancel_all(account: Account, data: dict) -> tuple[int, dict]:
    """Cancels the account's open orders (in `data["symbol"]`, or all)."""
    symbol = data.get("symbol")
    if symbol and await sync_to_async(selectors.instrument_get)(symbol) is None:
        # A symbol the exchange does not list is a 404, not "0 cancelled".
        raise NotFound(f"Unknown symbol {symbol[:40]!r}.", field="symbol", code="unknown_symbol")
    count = await gateway.order_cancel_all(account=account, symbol=symbol)
    return 202, {"requested": count}


def order_status(account: Account, **which) -> tuple[int, dict]:
    """One of the account's orders with its fills and, resting, its place in the queue."""
    order = own_order(account, **which)
    body = _ORDER_OUT.to_representation(s.order_with_fills(order))
    body["queue_position"] = _queue_position(selectors.order_queue_positions([order]), order)
    return 200, body


def _queue_position(positions: dict, order) -> dict | None:
    position = positions.get(order.pk)
    return None if position is None else _QUEUE_OUT.to_representation(position)


def _open_rows(account: Account, symbol: str | None = None) -> list:
    """The account's open orders (in one symbol, or all), recorded and pending, newest first,
    at most OPEN_ORDERS_MAX."""
    orders = selectors.order_list(account=account, symbol=symbol, open_only=True)
    rows = [*orders.recorded[:OPEN_ORDERS_MAX], *orders.pending]
    rows.sort(key=lambda order: -order.pk)
    return rows[:OPEN_ORDERS_MAX]


def open_orders(account: Account, symbol: str | None = None) -> tuple[int, dict]:
    """The account's open orders (in one symbol, or all), newest first, at most
    OPEN_ORDERS_MAX."""
    return 200, {"orders": order_rows(_open_rows(account, symbol))}


def resting_candidates(account: Account) -> list:
    """The account's open orders that have a price (those that can rest in a queue): what a
    WebSocket `executions` subscription follows the queues of."""
    return [o for o in _open_rows(account) if o.price is not None and o.order_id is not None]


def queue_places(orders) -> dict[int, tuple[str, dict]]:
    """Of `orders`, those listed in their book's queue key: order id -> (symbol, its
    `queue_position` as the REST order detail writes it)."""
    positions = selectors.order_queue_positions(orders)
    return {
        o.order_id: (o.instrument.symbol, _queue_position(positions, o))
        for o in orders
        if o.pk in positions
    }


def order_rows(orders) -> list[dict]:
    """Orders as a list gives them: each with its place in its queue when it rests (the queue
    keys of all their symbols read in one call)."""
    positions = selectors.order_queue_positions(orders)
    return [
        {**_ORDER_BRIEF.to_representation(o), "queue_position": _queue_position(positions, o)}
        for o in orders
    ]
