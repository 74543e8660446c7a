"""What a recorded batch of events does to its accounts' buying power (`exchange.orders.funds`),
applied once the batch's transaction has committed.

The recorder is the one writer of cash, so it is the one that moves the funds state's cash too,
by exactly what the batch's transaction changed in the database (fills, fees, whatever the
projection did), and releases what the batch's events free of the buy orders' reservations. A
release is the difference of two reservations computed by the one cost function
(`rules.order_cost_units`) — before and after a fill, a cancel, a replace — so an order's
releases add up to exactly what it reserved, whatever the rounding. Everything is a delta, applied
after the commit under the symbol's sequence guard: a replayed batch is skipped, and a batch whose
update is lost keeps both its holds and its cash as they were, which only ever leaves less buying
power (a hold is never below the money it stands for).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal

import redis

from exchange.models import Instrument
from exchange.orders import funds, rules

logger = logging.getLogger("flashbook.recorder")


def batch_effects(
    instrument: Instrument,
    events: list,
    cash_before: dict[int, Decimal],
    cash_after: dict[int, Decimal],
) -> dict[int, funds.AccountBatch]:
    """Each account's cash change (units, exact: the database keeps the unit's 8 places) and
    reservation operations for these events of one symbol, in sequence order."""

    def cost(ticks: int, lots: int) -> int:
        return rules.order_cost_units(instrument, ticks, lots)

    accounts: dict[int, funds.AccountBatch] = defaultdict(funds.AccountBatch)
    for account_id, after in cash_after.items():
        change = after - cash_before.get(account_id, after)
        if change:
            accounts[account_id].cash = rules.cash_units(change)
    # A taker buy trades only in the command that placed or re-priced it, whose events are in
    # the same stream entry (an entry holds whole commands): its limit price is known here.
    limits: dict[int, int] = {}
    markets: set[int] = set()  # market buys: reserved at the band's limit, released when done
    for event in events:
        kind = event.kind
        if kind == "level":
            continue
        if kind == "accepted":
            if event.side == "buy":
                if event.order_type == "market":
                    markets.add(event.order_id)
                else:
                    limits[event.order_id] = event.price
        elif kind == "trade":
            taker = event.aggressor == "buy"
            order_id = event.taker_order_id if taker else event.maker_order_id
            account_id = event.taker_account if taker else event.maker_account
            remaining = event.taker_remaining if taker else event.maker_remaining
            ops = accounts[account_id].ops
            if order_id in markets:
                if remaining == 0:
                    ops.append(("A", order_id, 0))
                continue
            # A maker trades at its own price; a taker's limit is at or above the trade's price
            # (released at the trade's price if unknown: less is released, never more).
            ticks = limits.get(order_id, event.price) if taker else event.price
            released = cost(ticks, remaining + event.qty) - cost(ticks, remaining)
            if released:
                ops.append(("R", order_id, released))
        elif kind == "cancelled":
            if event.side == "buy":
                ops = accounts[event.account].ops
                if event.order_id in markets or event.price == 0:
                    ops.append(("A", event.order_id, 0))
                else:  # a cancel removes the whole remaining quantity
                    ops.append(("R", event.order_id, cost(event.price, event.qty)))
        elif kind == "replaced":
            ops = accounts[event.account].ops
            ops.append(("P", event.order_id, 0))  # the replace's hold: a sell's has none
            if event.side == "buy":
                limits[event.order_id] = event.price
                change = cost(event.price, event.qty) - cost(event.old_price, event.old_qty)
                if change > 0:
                    ops.append(("I", event.order_id, change))
                elif change < 0:
                    ops.append(("R", event.order_id, -change))
        elif kind == "rejected":
            if event.command == "replace":
                accounts[event.account].ops.append(("P", event.order_id, 0))
            elif (
                event.command == "new"
                and event.order_id
                and event.reason != "DUPLICATE_ORDER_ID"  # the id is another order's
            ):
                accounts[event.account].ops.append(("A", event.order_id, 0))
    return dict(accounts)


def apply_after_commit(symbol: str, last_seq: int, accounts: dict[int, funds.AccountBatch]):
    """`funds.apply_batch`, for `transaction.on_commit`: a Redis failure is logged, not raised —
    the rows are committed, and a lost update only ever leaves less buying power."""
    try:
        funds.apply_batch(symbol, last_seq, accounts)
    except redis.RedisError:
        logger.warning(
            "recorder could not update the buying power of %d accounts symbol=%s seq=%d",
            len(accounts),
            symbol,
            last_seq,
        )
