"""Buying power: each account's funds state in Redis, which the append script checks a buy against
and reserves from (`journal._APPEND_NEWS`), in the same atomic step that appends the order.

The state is the hash `{prefix}:funds:{aACCOUNT}` (`keys.funds_key`), integers of
`rules.FUNDS_UNIT`:

* `cash` — the account's cash as the recorder has recorded it (the database's, to the unit);
* `held` — the sum of what the account's open buy orders reserve: `r:*` and `x:*` below;
* `r:<order id>` — what the buy order reserves now: its worst-case cost (`rules.order_cost_units`,
  price times remaining quantity plus the worst fee; a market buy at its band's upper limit);
* `x:<order id>` — the holds of the order's REPLACEs the engine has not answered yet (in journal
  order, space-separated): each the replace's full new cost (`journal._APPEND_REPLACE`);
* `s:<SYMBOL>` — the last event sequence number of the symbol the recorder has applied here.

Available cash = cash - held. The gateway adds holds (NEWs, REPLACEs); the recorder — the one
writer of cash — applies what each committed batch of events did (`apply_batch`, called from
`exchange.recorder.funds` after the commit): a fill moves money out of `held` and out of cash (a
sale adds its proceeds to cash), the end of an order releases what it reserved. Its changes are
deltas guarded by `s:<SYMBOL>`, so a replayed batch is applied at most once; a batch whose update
is lost (a crash between the commit and the update) leaves its holds in place as well as its cash
unchanged, and every hold is at least the money it stands for: the account then has *less*
buying power than it should, never more, until its state is rebuilt (`forget`).

A missing state (a new account, a reset, a Redis that lost its keys) is rebuilt from the
database (`bootstrap`) the first time a buy needs it: the append script refuses the buy with
`FundsMissing`, the gateway bootstraps and tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction

from exchange import redis_clients
from exchange.models import OPEN_STATUSES, Account, Instrument, Order, RecorderCursor, Side
from exchange.orders import journal, rules
from exchange.protocol.keys import funds_key

logger = logging.getLogger("flashbook.funds")

# Rebuilds a missing state; leaves one that exists (another process built it first) alone.
# KEYS: the funds hash. ARGV: cash, held, then field/value pairs (r:<id>, s:<SYMBOL>).
_BOOTSTRAP = """
if redis.call('HEXISTS', KEYS[1], 'cash') == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'cash', ARGV[1], 'held', ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
"""

# Applies one recorded batch of a symbol to its accounts' funds: for each account whose state
# exists and has not seen the batch (its `s:<SYMBOL>` below the batch's last sequence number),
# the cash change and the reservation operations, in event order:
#   R <id> <units>  release up to <units> of the order's reservation (never below zero)
#   A <id> 0        release all of it (the order ended: a market buy, a NEW the engine rejected)
#   I <id> <units>  raise it (a replace to a higher cost: its hold, taken off by P, covers it)
#   P <id> 0        take the oldest replace hold off the order's queue (the engine answered it)
# KEYS: the accounts' funds hashes. ARGV: "s:<SYMBOL>", the batch's last sequence number, then
# per account: the cash change, the number of operations, and the operations (3 values each).
_APPLY_BATCH = """
local seq_field, seq = ARGV[1], tonumber(ARGV[2])
local j = 3
for k = 1, #KEYS do
  local key = KEYS[k]
  local cash_change, count = ARGV[j], tonumber(ARGV[j + 1])
  local first = j + 2
  j = first + 3 * count
  local state = redis.call('HMGET', key, 'cash', seq_field)
  if state[1] and tonumber(state[2] or '0') < seq then
    if cash_change ~= '0' then
      redis.call('HINCRBY', key, 'cash', cash_change)
    end
    local held = 0
    for o = first, j - 1, 3 do
      local op, id, amount = ARGV[o], ARGV[o + 1], tonumber(ARGV[o + 2])
      if op == 'P' then
        local queued = redis.call('HGET', key, 'x:' .. id)
        if queued then
          local oldest, rest = string.match(queued, '^(%d+) ?(.*)$')
          held = held - tonumber(oldest)
          if rest == '' then
            redis.call('HDEL', key, 'x:' .. id)
          else
            redis.call('HSET', key, 'x:' .. id, rest)
          end
        end
      else
        local reserved = tonumber(redis.call('HGET', key, 'r:' .. id) or '0')
        local now = 0
        if op == 'I' then
          now = reserved + amount
        elseif op == 'R' then
          now = math.max(0, reserved - amount)
        end
        held = held + now - reserved
        if now > 0 then
          redis.call('HSET', key, 'r:' .. id, string.format('%.0f', now))
        elseif reserved > 0 then
          redis.call('HDEL', key, 'r:' .. id)
        end
      end
    end
    if held ~= 0 then
      redis.call('HINCRBY', key, 'held', string.format('%.0f', held))
    end
    redis.call('HSET', key, seq_field, ARGV[2])
  end
end
return 1
"""


_scripts: dict[tuple[int, str], object] = {}


def _script(source: str):
    """The script registered with this process's synchronous client (EVALSHA, loaded once)."""
    client = journal.client()
    found = _scripts.get((id(client), source))
    if found is None:
        found = _scripts[(id(client), source)] = client.register_script(source)
    return found


@dataclass
class Funds:
    """An account's funds state, in money (None fields: no state)."""

    cash: Decimal
    held: Decimal
    reservations: dict[int, int] = field(default_factory=dict)  # order id -> units
    replace_holds: dict[int, list[int]] = field(default_factory=dict)  # order id -> units

    @property
    def available(self) -> Decimal:
        return self.cash - self.held


def read(account_id: int) -> Funds | None:
    """The account's funds state as Redis holds it now, or None when it has none (yet)."""
    raw = journal.client().hgetall(funds_key(account_id))
    values = {k.decode(): v.decode() for k, v in raw.items()}
    if "cash" not in values:
        return None
    funds = Funds(
        cash=rules.money_of_units(int(values["cash"])),
        held=rules.money_of_units(int(values.get("held", 0))),
    )
    for name, value in values.items():
        if name.startswith("r:"):
            funds.reservations[int(name[2:])] = int(value)
        elif name.startswith("x:"):
            funds.replace_holds[int(name[2:])] = [int(v) for v in value.split()]
    return funds


def bootstrap(account_id: int) -> bool:
    """Builds the account's missing funds state from the database: its cash, and the
    reservations of its open buy orders — those recorded, and those only the journal has yet —
    at the recorder's cursors, so that the recorder applies exactly the batches after them.
    Returns False when a state existed already (another process built it first)."""
    # The journal's records are read before the database: an order recorded in between is in
    # both (the row wins), never in neither. While the state is missing no buy of the account can
    # be appended (the script refuses it), so no record can appear after this read unseen.
    pending = journal.pending_orders(account_id)
    outermost = not connection.in_atomic_block  # (a test's transaction has read already)
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            # One snapshot for every read below: the cursors, the cash and the orders agree.
            # (SQLite's transactions read one snapshot already.)
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cash = Account.objects.filter(pk=account_id).values_list("cash", flat=True).first()
        if cash is None:
            return False
        cursors = dict(RecorderCursor.objects.values_list("instrument__symbol", "last_seq"))
        orders = list(
            Order.objects.filter(
                account_id=account_id,
                side=Side.BUY,
                status__in=OPEN_STATUSES,
                order_id__isnull=False,
            ).values_list("order_id", "instrument_id", "price", "quantity", "filled_quantity")
        )
        recorded = set(
            Order.objects.filter(account_id=account_id, order_id__in=list(pending)).values_list(
                "order_id", flat=True
            )
        )
    instruments = Instrument.objects.in_bulk({instrument_id for _, instrument_id, *_ in orders}) | {
        instrument.pk: instrument
        for instrument in Instrument.objects.filter(
            symbol__in={record.symbol for record in pending.values()}
        )
    }
    by_symbol = {instrument.symbol: instrument for instrument in instruments.values()}
    reservations: dict[int, int] = {}
    for order_id, instrument_id, price, quantity, filled in orders:
        instrument = instruments[instrument_id]
        lots = instrument.qty_to_lots(quantity - filled)
        if price is None:  # a market buy the recorder has not seen end: at the band's limit
            ticks = _band_high(instrument)
        else:
            ticks = instrument.price_to_ticks(price)
        reservations[order_id] = rules.order_cost_units(instrument, ticks, lots)
    for order_id, record in pending.items():
        instrument = by_symbol.get(record.symbol)
        if order_id in recorded or record.side != Side.BUY or instrument is None:
            continue
        ticks = record.price_ticks if record.order_type == "limit" else _band_high(instrument)
        reservations[order_id] = rules.order_cost_units(instrument, ticks, record.quantity_lots)
    argv: list[str | int] = [rules.cash_units(cash), sum(reservations.values())]
    for order_id, units in reservations.items():
        argv += (f"r:{order_id}", units)
    for symbol, seq in cursors.items():
        argv += (f"s:{symbol}", seq)
    return bool(_script(_BOOTSTRAP)(keys=[funds_key(account_id)], args=argv))


def _band_high(instrument: Instrument) -> int:
    """The upper limit of the instrument's price band as the engine publishes it, else as the
    instrument's reference price and band say (an estimate: the engine's is about the last
    trade)."""
    book = journal.read_book(instrument.symbol) or {}
    band = book.get("band")
    if band:
        return int(band[1])
    reference = instrument.price_to_ticks(instrument.reference_price)
    return reference + int(reference * instrument.price_band_pct / 100)


def forget(account_ids) -> None:
    """Drops the accounts' funds states: each is rebuilt from the database by its next buy. For
    writes of cash other than the recorder's (a reset to the initial cash), after their commit."""
    ids = list(account_ids)
    client = journal.client()
    for start in range(0, len(ids), 1000):
        client.delete(*(funds_key(pk) for pk in ids[start : start + 1000]))


@dataclass
class AccountBatch:
    """What one recorded batch of a symbol did to an account's funds: the cash change (units)
    and the reservation operations, in event order (see `_APPLY_BATCH`)."""

    cash: int = 0
    ops: list[tuple[str, int, int]] = field(default_factory=list)


def apply_batch(symbol: str, last_seq: int, accounts: dict[int, AccountBatch]) -> None:
    """Applies a committed batch to the funds states (the recorder, after its commit); at most
    once per account and batch, whoever calls it how many times."""
    accounts = {pk: batch for pk, batch in accounts.items() if batch.cash or batch.ops}
    if not accounts:
        return
    groups = [list(accounts)]
    if redis_clients.is_cluster():
        # Each account's state is on its own slot, and the script treats each account apart (its
        # own `s:<SYMBOL>` makes it at most once): one call per slot is the same change.
        slots: dict[int, list[int]] = {}
        for pk in accounts:
            slots.setdefault(redis_clients.slot(funds_key(pk)), []).append(pk)
        groups = list(slots.values())
    for group in groups:
        keys = []
        argv: list[str | int] = [f"s:{symbol}", last_seq]
        for pk in group:
            batch = accounts[pk]
            keys.append(funds_key(pk))
            argv += (batch.cash, len(batch.ops))
            for op in batch.ops:
                argv += op
        _script(_APPLY_BATCH)(keys=keys, args=argv)
