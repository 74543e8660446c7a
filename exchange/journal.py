"""The exchange's side of the Redis wire protocol (`docs/protocol.md`): key names, appending
commands to a symbol's journal, waiting for the engine's reply, reading the book key.

Only the gateway appends to journals; everything else here is reading.
"""

import json
import uuid
from functools import cache

import redis
from django.conf import settings

# Assigns the next order id of the symbol and appends the NEW in one atomic step, so ids increase
# in journal order — the engine rejects a NEW whose id is not above every id it has seen.
# KEYS: id counter, journal. ARGV: field/value pairs without `id`.
_APPEND_NEW = """
local id = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], '*', 'id', id, unpack(ARGV))
return id
"""


def key(kind: str, symbol: str) -> str:
    """`{prefix}:{kind}:{SYM}` with the symbol as a Redis Cluster hash tag."""
    return f"{settings.FLASHBOOK_REDIS_PREFIX}:{kind}:{{{symbol}}}"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=2)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


@cache
def _append_new_script(url: str):
    return _client(url).register_script(_APPEND_NEW)


def append_new(symbol: str, fields: dict[str, str | int]) -> int:
    """Appends a NEW to the symbol's journal and returns the order id it was given."""
    argv: list[str | int] = []
    for name, value in fields.items():
        argv += [name, value]
    script = _append_new_script(settings.REDIS_URL)
    return int(script(keys=[key("oid", symbol), key("cmd", symbol)], args=argv))


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


def read_book(symbol: str) -> dict | None:
    raw = client().get(key("book", symbol))
    return None if raw is None else json.loads(raw)
