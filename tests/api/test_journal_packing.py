"""`journal.PackedConnection` sends exactly the bytes redis-py's asyncio connection would (it
only packs them faster), and refuses what redis-py refuses."""

import pytest
import redis.asyncio
from redis.exceptions import DataError

from exchange.orders import journal

COMMANDS = [
    ("EVALSHA", "0123abcd", 3, "k1", "k2", "k3", *(str(i) for i in range(5000))),
    ("SCRIPT LOAD", "return 1"),  # a two-word command name, sent as two arguments
    (b"CLIENT SETNAME", "order-entry"),
    ("SET", "key", 1.5),
    ("SET", "key", 12345678901234567890),
    ("XADD", "stream", "*", "field", b"\x00\xff binary", "text", "é ünïcode"),
    ("XADD", "stream", "*", "big", "x" * 100_000),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_bytes_are_redis_pys(command):
    ours, theirs = journal.PackedConnection(), redis.asyncio.Connection()
    assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))


@pytest.mark.parametrize("bad", [None, True])
def test_what_redis_py_refuses_is_refused(bad):
    with pytest.raises(DataError):
        journal.PackedConnection().pack_command("SET", "key", bad)


def test_used_for_plain_redis_urls_only():
    assert journal.connection_kwargs("redis://127.0.0.1:6379/0") == {
        "connection_class": journal.PackedConnection
    }
    assert journal.connection_kwargs("rediss://cache.example:6380/0") == {}
    assert journal.connection_kwargs("unix:///run/redis.sock") == {}


def test_another_encoding_is_honoured():
    command = ("SET", "clé", "välue")
    ours = journal.PackedConnection(encoding="latin-1")
    theirs = redis.asyncio.Connection(encoding="latin-1")
    assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))
    assert b"cl\xe9" in b"".join(ours.pack_command(*command))


def test_a_command_is_sent_without_a_task_of_its_own(monkeypatch):
    """Under a socket timeout redis-py sends each command through `asyncio.wait_for` (a task of
    its own before Python 3.12); ours writes at once and needs the timeout only when the socket
    did not take everything. Same answers, on a real Redis."""
    import asyncio
    import os
    import uuid

    calls = []
    wait_for = asyncio.wait_for

    def counting(awaitable, timeout):
        calls.append(timeout)
        return wait_for(awaitable, timeout)

    monkeypatch.setattr(asyncio, "wait_for", counting)
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    key = f"test-packing-{uuid.uuid4().hex}"

    async def round_trips(connection_class) -> list:
        client = redis.asyncio.Redis.from_url(
            url, socket_timeout=10, connection_class=connection_class
        )
        try:
            await client.set(key, "x" * 1000)
            answers = [len(await client.get(key)), await client.delete(key)]
        finally:
            await client.aclose()
        return answers

    assert asyncio.run(round_trips(journal.PackedConnection)) == [1000, 1]
    assert calls == []
    assert asyncio.run(round_trips(redis.asyncio.Connection)) == [1000, 1]
    assert calls  # redis-py's own does use it: the test sees what it means to
