"""The exchange's side of the Redis wire protocol (`docs/protocol.md`): key names, appending
commands to a symbol's journal, waiting for the engine's reply, reading the book key.

Only the gateway appends to journals; everything else here is reading.
"""

import asyncio
import json
import logging
import uuid
import weakref
from functools import cache

import flashbook_engine
import redis
import redis.asyncio
from django.conf import settings

from exchange.coalesce import Coalescer

logger = logging.getLogger("flashbook.gateway")

# Assigns the next order ids of the symbol and appends the NEWs in one atomic step, so ids increase
# in journal order — the engine rejects a NEW whose id is not above every id it has seen. Takes
# several NEWs at once (the async gateway sends the concurrent orders of a process together).
# Each NEW with a `ref` (the gateway's order row) also goes into the symbol's pending hash, ref ->
# id: the id the row will get from the recorder, known at once to whoever reads the row before
# then (`pending_ids`); the recorder removes it once the row carries it.
# KEYS: id counter, journal, pending hash. ARGV: for each NEW, the number of its field/value
# arguments, then them (without `id`). Returns the ids, in order.
_APPEND_NEWS = """
local ids = {}
local i = 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local id = redis.call('INCR', KEYS[1])
  redis.call('XADD', KEYS[2], '*', 'id', id, unpack(ARGV, i + 1, i + n))
  for f = i + 1, i + n, 2 do
    if ARGV[f] == 'ref' then
      redis.call('HSET', KEYS[3], ARGV[f + 1], id)
      break
    end
  end
  ids[#ids + 1] = id
  i = i + n + 1
end
return ids
"""


def _script_args(commands: list[dict[str, str | int]]) -> list[str | int]:
    argv: list[str | int] = []
    for fields in commands:
        argv.append(2 * len(fields))
        for name, value in fields.items():
            argv += [name, value]
    return argv


def key(kind: str, symbol: str) -> str:
    """`{prefix}:{kind}:{SYM}` with the symbol as a Redis Cluster hash tag."""
    return f"{settings.FLASHBOOK_REDIS_PREFIX}:{kind}:{{{symbol}}}"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=2)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


@cache
def _append_news_script(url: str):
    return _client(url).register_script(_APPEND_NEWS)


def append_new(symbol: str, fields: dict[str, str | int]) -> int:
    """Appends a NEW to the symbol's journal and returns the order id it was given."""
    script = _append_news_script(settings.REDIS_URL)
    ids = script(keys=_append_keys(symbol), args=_script_args([fields]))
    return int(ids[0])


def _append_keys(symbol: str) -> list[str]:
    return [key("oid", symbol), key("cmd", symbol), key("pending", symbol)]


def pending_ids(symbol: str, refs: list[int]) -> dict[int, int]:
    """The exchange ids of journaled NEWs whose rows the recorder has not numbered yet, by `ref`
    (the order row's primary key); refs it does not know are left out."""
    if not refs:
        return {}
    values = client().hmget(key("pending", symbol), refs)
    return {ref: int(value) for ref, value in zip(refs, values, strict=True) if value is not None}


def forget_pending(symbol: str, refs: list[int]) -> None:
    """Drops refs whose rows carry their exchange id now (the recorder, after its commit)."""
    if refs:
        client().hdel(key("pending", symbol), *refs)


def append(symbol: str, fields: dict[str, str | int]) -> str:
    """Appends any other command (cancel, replace, halt, resume, reset); returns its journal id."""
    return client().xadd(key("cmd", symbol), fields).decode()


def new_reply_key(symbol: str) -> str:
    return f"{settings.FLASHBOOK_REDIS_PREFIX}:reply:{{{symbol}}}:{uuid.uuid4().hex}"


def wait_reply(reply_key: str, timeout: float) -> str | None:
    """The engine's event lines for a command, or None if they did not arrive in time."""
    if timeout <= 0:
        return None
    answer = client().blpop([reply_key], timeout=timeout)
    return None if answer is None else answer[1].decode()


# --- asyncio -----------------------------------------------------------------------------------
# An asyncio Redis client belongs to the event loop it was made in: one per loop (uvicorn runs one
# per worker process; tests may run several one after the other).

_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncParts]" = (
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


def _connection_kwargs(url: str) -> dict:
    # TLS (rediss://) and Unix sockets keep redis-py's own connection classes.
    return {"connection_class": PackedConnection} if url.startswith("redis://") else {}


class _AsyncParts:
    def __init__(self) -> None:
        self.url = settings.REDIS_URL
        self.prefix = settings.FLASHBOOK_REDIS_PREFIX
        self.client = redis.asyncio.Redis.from_url(
            self.url, socket_timeout=10, socket_connect_timeout=2, **_connection_kwargs(self.url)
        )
        self.append_news = self.client.register_script(_APPEND_NEWS)
        self.appenders: dict[tuple[str, str], Coalescer] = {}  # (kind, symbol)


def _async_parts() -> _AsyncParts:
    loop = asyncio.get_running_loop()
    parts = _async_clients.get(loop)
    if (
        parts is None
        or parts.url != settings.REDIS_URL
        or parts.prefix != settings.FLASHBOOK_REDIS_PREFIX
    ):
        parts = _async_clients[loop] = _AsyncParts()
    return parts


def aclient() -> redis.asyncio.Redis:
    """This event loop's Redis client."""
    return _async_parts().client


async def aappend_new(symbol: str, fields: dict[str, str | int]) -> int:
    """`append_new` for asyncio callers; the NEWs of concurrent callers go in one script call."""
    parts = _async_parts()
    appender = parts.appenders.get(("new", symbol))
    if appender is None:
        keys = _append_keys(symbol)

        async def append_all(commands: list[dict[str, str | int]]) -> list[int]:
            return [int(i) for i in await parts.append_news(keys=keys, args=_script_args(commands))]

        appender = parts.appenders[("new", symbol)] = Coalescer(append_all)
    return await appender.submit(fields)


async def aappend(symbol: str, fields: dict[str, str | int]) -> None:
    """`append` for asyncio callers; the commands of concurrent callers go in one pipeline."""
    parts = _async_parts()
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


class ReplyListener:
    """The engine's immediate outcomes for one symbol, for every order of this event loop.

    Rather than one reply list (and one blocked connection) per order, the orders of a process
    name one list per symbol; this task pops whatever the engine pushed there, many at a time,
    and hands each outcome to the order waiting for it, found by the `ref` the gateway gave the
    NEW (its order's primary key), which the engine echoes in `accepted`/`rejected`."""

    BATCH = 256

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.key = f"{settings.FLASHBOOK_REDIS_PREFIX}:reply:{{{symbol}}}:{uuid.uuid4().hex}"
        self._waiting: dict[int, asyncio.Future] = {}
        self._task: asyncio.Task | None = None

    def expect(self, ref: int) -> asyncio.Future:
        """A future for the outcome of the NEW with this `ref` (the reply's decoded events);
        register it before appending."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen())
        future = asyncio.get_running_loop().create_future()
        self._waiting[ref] = future
        return future

    def forget(self, ref: int) -> None:
        self._waiting.pop(ref, None)

    async def _listen(self) -> None:
        client = aclient()
        while self._waiting:
            try:
                answer = await client.blmpop(1, 1, self.key, direction="RIGHT", count=self.BATCH)
            except redis.RedisError:
                logger.warning("reply listener %s: Redis error", self.key, exc_info=True)
                await asyncio.sleep(0.1)
                continue
            if answer is None:
                continue
            for raw in answer[1]:
                self._deliver(raw.decode())

    def _deliver(self, lines: str) -> None:
        events = flashbook_engine.decode_events(lines)
        for event in events:
            if event.kind in ("accepted", "rejected") and event.client_ref is not None:
                future = self._waiting.pop(event.client_ref, None)
                if future is not None and not future.done():
                    future.set_result(events)  # decoded once, here
                return


_listeners: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ReplyListener]]" = (
    weakref.WeakKeyDictionary()
)


def reply_listener(symbol: str) -> ReplyListener:
    """This event loop's listener for the symbol's replies."""
    loop = asyncio.get_running_loop()
    by_symbol = _listeners.setdefault(loop, {})
    listener = by_symbol.get(symbol)
    if listener is None or not listener.key.startswith(f"{settings.FLASHBOOK_REDIS_PREFIX}:"):
        listener = by_symbol[symbol] = ReplyListener(symbol)
    return listener


def read_book(symbol: str) -> dict | None:
    raw = client().get(key("book", symbol))
    return None if raw is None else json.loads(raw)
