"""The exchange's side of the Redis wire protocol (`docs/protocol.md`), written once: the append
script, the records of orders the recorder has not recorded yet, the engine's replies.

The journal is the truth and the database a projection of it: appending a NEW here is the only
write an order makes before it is acknowledged. The append script gives the order its exchange id
(which is also its id in the API and its database row's key), enforces its client order id's
uniqueness per account, and keeps the order's record under its account until the recorder has
written the row — so that its owner reads, cancels and replaces it at once, whatever the
recorder's lag (`pending_orders`).

Only the gateway appends orders and commands to journals (an engine worker adds only its clock
ticks, `docs/protocol.md`); the recorder forgets records; everything else reads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction

import flashbook_engine
import redis
import redis.asyncio
import redis.cluster
from django.conf import settings

from exchange import redis_clients
from exchange.orders.coalesce import Coalescer
from exchange.protocol.keys import funds_key, id_counter_key, key, pending_key, reply_key

logger = logging.getLogger("flashbook.gateway")

# Appends NEWs in one atomic step. For each: a client order id the account used already returns
# that order's id, negated, and appends nothing; otherwise, for a buy, its worst-case cost is
# checked against the account's available cash (its funds hash: cash minus what its open buy
# orders hold, `exchange.orders.funds`) and reserved; then the next id of the exchange-wide
# counter (kept above the symbol's last id: the engine refuses a NEW whose id is not above every
# id it has seen in the symbol) goes on the entry, and the order's record into its account's hash
# (field = id), with the client order id's index entry (field = "c:" .. client order id).
# The check and the reservation are in the script that appends, and Redis runs one script at a
# time: no two orders of an account, whatever their symbols or processes, both see the same cash.
# Nothing is appended for a symbol no engine has taken on yet (no status hash): 0 is returned, and
# the orders are refused at once rather than left PENDING in a journal nobody reads.
# KEYS: the exchange's id counter, the symbol's last id, the journal, the engine's status hash,
# the engine's book key (its price band), then per NEW its account's pending hash and funds hash.
# ARGV: for each NEW, the number of its field/value arguments, them (without `id`), its client
# order id to index ("" for none: a generated one cannot collide), its record ("" to keep none)
# and its hold: "" (a sell: nothing to reserve), "L<units>" (a limit buy's cost) or
# "M<numerator>/<denominator>+<extra>" (a market buy's cost per tick, valued at the band's upper
# limit, plus a fixed allowance for the fees' rounding).
# Returns, per NEW, its id; or minus the id of the order holding its client order id; or a
# refusal, nothing written for it:
# {1, available, needed} (insufficient funds), {2} (the account has no funds state: the gateway
# builds it from the database and retries), {3} (a market buy and no price band to value it).
_APPEND_NEWS = """
if redis.call('EXISTS', KEYS[4]) == 0 then
  return 0
end
local ids = {}
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local band_high = nil
local i, k = 1, 6
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local coid, record, hold = ARGV[i + n + 1], ARGV[i + n + 2], ARGV[i + n + 3]
  local existing = false
  if coid ~= '' then
    existing = redis.call('HGET', KEYS[k], 'c:' .. coid)
  end
  local refused = nil
  local need = 0
  if existing then
    refused = -tonumber(existing)
  elseif hold ~= '' then
    local funds = redis.call('HMGET', KEYS[k + 1], 'cash', 'held')
    if not funds[1] then
      refused = {2}
    else
      if string.sub(hold, 1, 1) == 'M' then
        if band_high == nil then
          local book = redis.call('GET', KEYS[5])
          local high = book and string.match(book, '"band":%s*%[%s*%d+%s*,%s*(%d+)%s*%]')
          band_high = high and tonumber(high) or false
        end
        if band_high then
          -- Exact while the product stays below 2^53; above it, more than any cash holds.
          local num, den, extra = string.match(hold, '^M(%d+)/(%d+)%+(%d+)$')
          local product = band_high * tonumber(num)
          if product >= 9007199254740992 then
            need = 9007199254740992
          else
            need = math.ceil(product / tonumber(den)) + tonumber(extra)
          end
        else
          refused = {3}
        end
      else
        need = tonumber(string.sub(hold, 2))
      end
      local available = tonumber(funds[1]) - tonumber(funds[2] or '0')
      if refused == nil and need > available then
        refused = {1, available, need}
      end
    end
  end
  if refused ~= nil then
    ids[#ids + 1] = refused
  else
    local id = redis.call('INCR', KEYS[1])
    if id <= last then
      id = last + 1
      redis.call('SET', KEYS[1], id)
    end
    last = id
    redis.call('XADD', KEYS[3], '*', 'id', id, unpack(ARGV, i + 1, i + n))
    if record ~= '' then
      redis.call('HSET', KEYS[k], id, record)
      if coid ~= '' then
        redis.call('HSET', KEYS[k], 'c:' .. coid, id)
      end
    end
    if hold ~= '' then
      -- As a string of digits: a Lua number may be written with an exponent.
      local amount = string.format('%.0f', need)
      redis.call('HINCRBY', KEYS[k + 1], 'held', amount)
      redis.call('HSET', KEYS[k + 1], 'r:' .. id, amount)
    end
    ids[#ids + 1] = id
  end
  i = i + n + 4
  k = k + 2
end
redis.call('SET', KEYS[2], last)
return ids
"""

# Appends a REPLACE of a buy order after reserving its new worst-case cost — in full, beside the
# order's present reservation, until the engine has answered: the gateway does not know the
# order's remaining quantity as the engine will see it (fills may be on their way), and a replace
# sets the remaining quantity, so only the full new cost is safe. The hold is queued on the order
# (field "x:<id>", amounts in journal order); the recorder takes it off with the engine's answer
# (`replaced` or the replace's `rejected`), the order's reservation becoming the new cost.
# KEYS: the account's funds hash, the journal. ARGV: the order id, the hold, then the REPLACE's
# field/value arguments. Returns 1, or a refusal as the append script's ({1, available, needed},
# {2}); nothing is written on a refusal.
_APPEND_REPLACE = """
local funds = redis.call('HMGET', KEYS[1], 'cash', 'held')
if not funds[1] then
  return {2}
end
local need = tonumber(ARGV[2])
local available = tonumber(funds[1]) - tonumber(funds[2] or '0')
if need > available then
  return {1, available, need}
end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
redis.call('HINCRBY', KEYS[1], 'held', ARGV[2])
local field = 'x:' .. ARGV[1]
local queued = redis.call('HGET', KEYS[1], field)
redis.call('HSET', KEYS[1], field, queued and (queued .. ' ' .. ARGV[2]) or ARGV[2])
return 1
"""


COID_FIELD = "c:"

# The Redis servers (and prefixes) whose id counter this process has raised to the database's
# highest order key: once per process is enough.
_id_floors_set: set[tuple[str, str]] = set()


# --- the record of an order not recorded yet ---------------------------------------------------


@dataclass(slots=True)
class PendingRecord:
    """What the journal's NEW says of an order, kept until the recorder has written its row.
    Prices in ticks (0 for a market order), quantities in lots, the time in ms since the epoch.
    The gateway builds it before the append gives it its id (`order_id` 0 until then). As far as
    a cancel or a replace is concerned it is an open order (`is_open`, `status`)."""

    order_id: int
    account_id: int
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    price_ticks: int
    quantity_lots: int
    post_only: bool
    created_ms: int
    client_order_id: str

    status = "PENDING"
    is_open = True

    def encode(self) -> str:
        # The client order id last: it is printable ASCII and may hold spaces.
        return (
            f"{self.symbol} {self.side} {self.order_type} {self.time_in_force} "
            f"{self.price_ticks} {self.quantity_lots} {int(self.post_only)} {self.created_ms} "
            f"{self.client_order_id}"
        )

    @classmethod
    def decode(cls, order_id: int, account_id: int, raw: str | bytes) -> PendingRecord:
        if isinstance(raw, bytes):
            raw = raw.decode()
        symbol, side, kind, tif, px, qty, post, ms, coid = raw.split(" ", 8)
        return cls(
            order_id=order_id,
            account_id=account_id,
            symbol=symbol,
            side=side,
            order_type=kind,
            time_in_force=tif,
            price_ticks=int(px),
            quantity_lots=int(qty),
            post_only=post == "1",
            created_ms=int(ms),
            client_order_id=coid,
        )


def _records(account_id: int, raw: dict) -> dict[int, PendingRecord]:
    records = {}
    for field, value in raw.items():
        name = field.decode() if isinstance(field, bytes) else field
        if not name.startswith(COID_FIELD):
            records[int(name)] = PendingRecord.decode(int(name), account_id, value)
    return records


# --- synchronous readers (selectors, the recorder, operations) ---------------------------------


_sync_clients: dict[str, redis.Redis | redis.cluster.RedisCluster] = {}


def client() -> redis.Redis | redis.cluster.RedisCluster:
    """This process's synchronous client (a cluster's, for a `redis+cluster://` URL)."""
    url = settings.REDIS_URL
    found = _sync_clients.get(url)
    if found is None:
        found = _sync_clients[url] = redis_clients.client(
            url, socket_timeout=10, socket_connect_timeout=2
        )
    return found


def pending_orders(account_id: int) -> dict[int, PendingRecord]:
    """The account's orders the journal has and the database may not yet, by id."""
    return _records(account_id, client().hgetall(pending_key(account_id)))


def pending_order(account_id: int, order_id: int) -> PendingRecord | None:
    raw = client().hget(pending_key(account_id), str(order_id))
    return None if raw is None else PendingRecord.decode(order_id, account_id, raw)


def pending_order_id(account_id: int, client_order_id: str) -> int | None:
    """The id of the account's order with this client order id, while the journal's record of
    it is kept (the append script's index); None otherwise."""
    raw = client().hget(pending_key(account_id), COID_FIELD + client_order_id)
    return None if raw is None else int(raw)


def pending_by_account(wanted: dict[int, list[int]]) -> dict[int, PendingRecord]:
    """The records of these orders ({account id: [order ids]}) that exist, by order id: one
    round trip for all (the recorder)."""
    accounts = [(account, ids) for account, ids in wanted.items() if ids]
    if not accounts:
        return {}
    pipe = client().pipeline(transaction=False)
    for account, ids in accounts:
        pipe.hmget(pending_key(account), [str(i) for i in ids])
    found = {}
    for (account, ids), values in zip(accounts, pipe.execute(), strict=True):
        for order_id, raw in zip(ids, values, strict=True):
            if raw is not None:
                found[order_id] = PendingRecord.decode(order_id, account, raw)
    return found


def forget_pending(records: list[PendingRecord]) -> None:
    """Drops the records of orders whose rows are committed (the recorder, after its commit)."""
    if not records:
        return
    by_account: dict[int, list[str]] = {}
    for record in records:
        by_account.setdefault(record.account_id, []).append(str(record.order_id))
    pipe = client().pipeline(transaction=False)
    for account, ids in by_account.items():
        pipe.hdel(pending_key(account), *ids)
    pipe.execute()


def forget_client_order_ids(records: list[PendingRecord]) -> None:
    """Drops the client order id index entries of recorded orders (the database has them now).
    The recorder does this a while after its commit, never at once: see `recorder.COID_GRACE_S`."""
    by_account: dict[int, list[str]] = {}
    for record in records:
        by_account.setdefault(record.account_id, []).append(COID_FIELD + record.client_order_id)
    if not by_account:
        return
    pipe = client().pipeline(transaction=False)
    for account, fields in by_account.items():
        pipe.hdel(pending_key(account), *fields)
    pipe.execute()


_RAISE_FLOOR = (
    "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then "
    "redis.call('SET', KEYS[1], ARGV[1]) end"
)


def raise_id_floor(floor: int) -> None:
    """`araise_id_floor` for synchronous callers (the recorder)."""
    client().eval(_RAISE_FLOOR, 1, id_counter_key(), floor)
    _id_floors_set.add((settings.REDIS_URL, settings.FLASHBOOK_REDIS_PREFIX))


def append(symbol: str, fields: dict[str, str | int]) -> str:
    """Appends a command other than a NEW without the gateway: for tools and tests that write the
    journal directly (the gateway's own commands go through `aappend`)."""
    return client().xadd(key("cmd", symbol), fields).decode()


def read_book(symbol: str) -> dict | None:
    raw = client().get(key("book", symbol))
    return None if raw is None else json.loads(raw)


# --- asyncio: the gateway ----------------------------------------------------------------------
# An asyncio Redis client belongs to the event loop it was made in: one per loop (uvicorn runs one
# per worker process; a synchronous caller's `async_to_sync` may run a loop per call).

_async_parts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncParts] = (
    weakref.WeakKeyDictionary()
)


class PackedConnection(redis.asyncio.Connection):
    """redis-py's asyncio connection, packing a command with one join. Its own `pack_command`
    joins the growing buffer again for every argument, and the append script of a batch of
    orders has thousands of them: ~10 % of the agents runner's time went there. The bytes sent
    are the same (`tests/api/test_journal_packing.py`)."""

    def pack_command(self, *args):
        name = args[0]
        if isinstance(name, str):
            args = (*name.encode().split(), *args[1:])  # "SCRIPT LOAD": two words, sent apart
        elif b" " in name:
            args = (*name.split(), *args[1:])
        encode = self.encoder.encode
        plain = self.encoder.encoding == "utf-8" and self.encoder.encoding_errors == "strict"
        pieces = [b"*%d\r\n" % len(args)]
        for arg in args:
            kind = type(arg)
            if kind is bytes:
                pass
            elif kind is str and plain:
                arg = arg.encode()
            elif kind is int:  # not a bool, which the encoder refuses
                arg = b"%d" % arg
            else:
                arg = encode(arg)
            pieces += (b"$%d\r\n" % len(arg), arg, b"\r\n")
        return [b"".join(pieces)]

    async def send_packed_command(self, command, check_health: bool = True) -> None:
        """redis-py's, without a task per command. With a socket timeout, redis-py wraps every
        write in `asyncio.wait_for`, which before Python 3.12 runs it as a task of its own; yet
        the write only ever waits when the socket did not take all of it (a server that does
        not read), and only then is the timeout needed here. Measured under uvloop, a GET in a
        loop: ~80 us of CPU with the task, ~55 us without (~150 commands a second in the demo
        market's agents runner)."""
        if not self.socket_timeout or not self.is_connected:
            return await super().send_packed_command(command, check_health)
        if check_health:
            await self.check_health()  # may reconnect: the writer is read after it
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        writer = self._writer
        try:
            writer.writelines(command)
            if writer.transport.get_write_buffer_size():
                await asyncio.wait_for(writer.drain(), self.socket_timeout)
            else:
                await writer.drain()  # at once: nothing waits to be written
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise redis.TimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await self.disconnect(nowait=True)
            raise redis.ConnectionError(f"Error while writing to socket. {exc}.") from exc
        except BaseException:
            await self.disconnect(nowait=True)  # part of the command may have been sent
            raise


def connection_kwargs(url: str) -> dict:
    """What an asyncio Redis client of this process is made with (the packed connection).
    TLS (rediss://) and Unix sockets keep redis-py's own connection classes."""
    return {"connection_class": PackedConnection} if url.startswith("redis://") else {}


class _AsyncParts:
    def __init__(self) -> None:
        self.url = settings.REDIS_URL
        self.prefix = settings.FLASHBOOK_REDIS_PREFIX
        self.client = redis_clients.aclient(
            self.url, socket_timeout=10, socket_connect_timeout=2, **connection_kwargs(self.url)
        )
        # On a cluster the client serves the single-key commands (instrument commands, the
        # records' reads) and the throttle; the two scripts below span slots and are refused
        # (`_single_server_scripts`).
        self.cluster = redis_clients.is_cluster(self.url)
        self.append_news = self.client.register_script(_APPEND_NEWS)
        self.append_replace = self.client.register_script(_APPEND_REPLACE)
        self.appenders: dict[tuple[str, str], Coalescer] = {}  # (kind, symbol)
        self.listeners: dict[str, ReplyListener] = {}


def _parts() -> _AsyncParts:
    loop = asyncio.get_running_loop()
    parts = _async_parts.get(loop)
    if (
        parts is None
        or parts.url != settings.REDIS_URL
        or parts.prefix != settings.FLASHBOOK_REDIS_PREFIX
    ):
        parts = _async_parts[loop] = _AsyncParts()
    return parts


def aclient() -> redis.asyncio.Redis:
    """This event loop's Redis client."""
    return _parts().client


async def aclose_loop() -> None:
    """Closes this event loop's client and listeners (a loop that ends: `async_to_sync`'s)."""
    parts = _async_parts.pop(asyncio.get_running_loop(), None)
    if parts is None:
        return
    for listener in parts.listeners.values():
        listener.close()
    await parts.client.aclose()


def id_floor_needed() -> bool:
    return (settings.REDIS_URL, settings.FLASHBOOK_REDIS_PREFIX) not in _id_floors_set


async def araise_id_floor(floor: int) -> None:
    """Keeps the exchange's id counter at or above `floor` (the database's highest order key): a
    Redis that lost its keys must not hand out ids the database's rows have."""
    # Only ever raised (a concurrent INCR may have passed the floor meanwhile).
    await _parts().client.eval(_RAISE_FLOOR, 1, id_counter_key(), floor)
    _id_floors_set.add((settings.REDIS_URL, settings.FLASHBOOK_REDIS_PREFIX))


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A NEW for the append script: its journal fields (without `id`), the client order id to
    index (None for a generated one), the record to keep (None for none), and what it holds of
    its account's cash (`hold_limit` / `hold_market`; "" for a sell: nothing)."""

    account_id: int
    fields: dict[str, str | int]
    client_order_id: str | None
    record: PendingRecord | None
    hold: str = ""


def hold_limit(units: int) -> str:
    """The hold of a limit buy: its worst-case cost, in `rules.FUNDS_UNIT`."""
    return f"L{units}"


def hold_market(units_per_tick: Fraction, extra: int = 0) -> str:
    """The hold of a market buy: its exact cost per tick of the band's upper limit (the script
    values it with the engine's latest band), plus `extra` units (the fees' rounding)."""
    return f"M{units_per_tick.numerator}/{units_per_tick.denominator}+{extra}"


class FundsShort(Exception):
    """The account's available cash does not cover the order's worst-case cost: not appended."""

    def __init__(self, available: int, needed: int):
        super().__init__(available, needed)
        self.available, self.needed = available, needed


class FundsMissing(Exception):
    """The account has no funds state in Redis (new, reset, or a Redis that lost its keys): not
    appended; the gateway builds it from the database (`funds.bootstrap`) and tries again."""


class NoBand(Exception):
    """A market buy, and the engine publishes no price band to value it at: not appended."""


def _refusal(code: list) -> Exception:
    kind = int(code[0])
    if kind == 1:
        return FundsShort(int(code[1]), int(code[2]))
    if kind == 2:
        return FundsMissing()
    return NoBand()


class NotServed(Exception):
    """No engine has taken the symbol on (yet): its NEWs were not appended."""

    def __init__(self, symbol: str):
        super().__init__(symbol)
        self.symbol = symbol


def _script_call(symbol: str, news: list[NewEntry]) -> tuple[list[str], list[str | int]]:
    keys = [
        id_counter_key(),
        key("oid", symbol),
        key("cmd", symbol),
        key("status", symbol),
        key("book", symbol),
    ]
    argv: list[str | int] = []
    for new in news:
        keys += (pending_key(new.account_id), funds_key(new.account_id))
        argv.append(2 * len(new.fields))
        for name, value in new.fields.items():
            argv += (name, value)
        argv.append(new.client_order_id or "")
        argv.append("" if new.record is None else new.record.encode())
        argv.append(new.hold)
    return keys, argv


def _single_server_scripts(parts: _AsyncParts) -> None:
    """The append scripts touch the symbol's journal, its accounts' hashes and the exchange's id
    counter: three slots on a cluster. Until they are split (`docs/deploy.md`, "On a Redis
    Cluster") an order is refused with that reason, before anything is sent."""
    if parts.cluster:
        redis_clients.require_single_server("The gateway's order append", parts.url)


async def aappend_new(symbol: str, new: NewEntry) -> int:
    """Appends a NEW; returns its exchange id, or minus the id of the account's order that has
    this client order id already (then nothing was appended). Raises NotServed when no engine has
    taken the symbol on, FundsShort, FundsMissing or NoBand when a buy was not appended for its
    cost. The NEWs of concurrent callers go in one script call."""
    parts = _parts()
    _single_server_scripts(parts)
    appender = parts.appenders.get(("new", symbol))
    if appender is None:

        async def append_all(news: list[NewEntry]) -> list[int | Exception]:
            keys, argv = _script_call(symbol, news)
            ids = await parts.append_news(keys=keys, args=argv)
            if ids == 0:
                return [NotServed(symbol)] * len(news)
            return [_refusal(i) if isinstance(i, list) else int(i) for i in ids]

        appender = parts.appenders[("new", symbol)] = Coalescer(append_all)
    return await appender.submit(new)


async def aappend(symbol: str, fields: dict[str, str | int]) -> None:
    """Appends any other command (cancel, replace, halt, resume, reset); the commands of
    concurrent callers go in one pipeline."""
    parts = _parts()
    appender = parts.appenders.get(("cmd", symbol))
    if appender is None:
        journal_key = key("cmd", symbol)

        async def append_all(commands: list[dict[str, str | int]]) -> list[None]:
            pipe = parts.client.pipeline(transaction=False)
            for fields in commands:
                pipe.xadd(journal_key, fields)
            await pipe.execute()
            return [None] * len(commands)

        appender = parts.appenders[("cmd", symbol)] = Coalescer(append_all)
    await appender.submit(fields)


async def aappend_replace_buy(
    symbol: str, account_id: int, order_id: int, hold_units: int, fields: dict[str, str | int]
) -> None:
    """Appends a REPLACE of a buy order once its new worst-case cost is held (`_APPEND_REPLACE`).
    Raises FundsShort or FundsMissing, nothing appended, when it cannot be."""
    parts = _parts()
    _single_server_scripts(parts)
    argv: list[str | int] = [order_id, hold_units]
    for name, value in fields.items():
        argv += (name, value)
    answer = await parts.append_replace(keys=[funds_key(account_id), key("cmd", symbol)], args=argv)
    if isinstance(answer, list):
        raise _refusal(answer)


async def apending_order(account_id: int, order_id: int) -> PendingRecord | None:
    raw = await aclient().hget(pending_key(account_id), str(order_id))
    return None if raw is None else PendingRecord.decode(order_id, account_id, raw)


async def aclient_order_id_holder(account_id: int, client_order_id: str) -> int | None:
    """The id of the account's order with this client order id, while the journal's index has it."""
    raw = await aclient().hget(pending_key(account_id), COID_FIELD + client_order_id)
    return None if raw is None else int(raw)


async def apending_orders(account_id: int) -> dict[int, PendingRecord]:
    return _records(account_id, await aclient().hgetall(pending_key(account_id)))


class ReplyListener:
    """The engine's immediate outcomes for one symbol, for every command of this event loop that
    asks for one: the one way the gateway waits for the engine.

    The commands of a loop name one reply list per symbol; this task pops whatever the engine
    pushed there, many at a time, and hands each outcome to the caller waiting for it, found by
    the command and order id its first order event names (`reply_key_of`). An outcome may arrive
    before its caller asks for it (a NEW's caller learns the id from the append): it is kept a
    moment (`EARLY_KEPT`). Two commands of one kind for one order (two cancels of it) are answered
    in the engine's order, which is the journal's."""

    BATCH = 256
    EARLY_KEPT = 4096

    def __init__(self, symbol: str, client: redis.asyncio.Redis) -> None:
        self.symbol = symbol
        self.key = reply_key(symbol, f"{id(self):x}-{asyncio.get_running_loop().time():.6f}")
        self._client = client
        self._waiting: dict[tuple[str, int], list[asyncio.Future]] = {}
        self._early: OrderedDict[tuple[str, int], list[list]] = OrderedDict()
        self._expected = 0  # replies asked for and not delivered yet
        self._task: asyncio.Task | None = None

    def asked(self) -> None:
        """A command naming this listener's key is about to be appended."""
        self._expected += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen())

    def not_asked(self) -> None:
        """The append failed: no reply will come for it."""
        self._expected = max(0, self._expected - 1)

    async def outcome(self, order_id: int, timeout: float, command: str = "new") -> list | None:
        """The decoded events of the command (`new`, `cancel` or `replace`) of this order id, or
        None if they did not come in time."""
        wanted = (command, order_id)
        early = self._early.get(wanted)
        if early:
            events = early.pop(0)
            if not early:
                del self._early[wanted]
            return events
        future = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(wanted, [])
        queue.append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            if future in queue:
                queue.remove(future)
            if not queue and self._waiting.get(wanted) is queue:
                del self._waiting[wanted]

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _listen(self) -> None:
        while self._expected > 0:
            try:
                answer = await self._client.blmpop(
                    1, 1, self.key, direction="RIGHT", count=self.BATCH
                )
            except redis.RedisError:
                logger.warning("reply listener %s: Redis error", self.key, exc_info=True)
                await asyncio.sleep(0.1)
                continue
            if answer is None:
                continue
            for raw in answer[1]:
                self._expected = max(0, self._expected - 1)
                self._deliver(raw.decode())

    def _deliver(self, lines: str) -> None:
        events = flashbook_engine.decode_events(lines)  # decoded once, here
        wanted = reply_key_of(events)
        if wanted is None:
            return
        queue = self._waiting.get(wanted)
        while queue:
            future = queue.pop(0)
            if not future.done():
                future.set_result(events)
                return
        self._early.setdefault(wanted, []).append(events)
        self._early.move_to_end(wanted)
        while len(self._early) > self.EARLY_KEPT:
            self._early.popitem(last=False)


# The first order event of a command's reply names the command it answers: a NEW's is `accepted`
# or `rejected`, a CANCEL's `cancelled` or `rejected`, a REPLACE's `replaced` or `rejected` (a
# rejection names its command). Book status events (a pause that ended) may come before it.
_ANSWERS = {"accepted": "new", "cancelled": "cancel", "replaced": "replace"}


def reply_key_of(events: list) -> tuple[str, int] | None:
    """(command, order id) of the command a reply answers."""
    for event in events:
        kind = event.kind
        if kind == "rejected":
            return event.command, event.order_id
        command = _ANSWERS.get(kind)
        if command is not None:
            return command, event.order_id
    return None


def reply_listener(symbol: str) -> ReplyListener:
    """This event loop's listener for the symbol's replies."""
    parts = _parts()
    listener = parts.listeners.get(symbol)
    if listener is None:
        listener = parts.listeners[symbol] = ReplyListener(symbol, parts.client)
    return listener
