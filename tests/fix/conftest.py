"""A live stack for the FIX tests, started once for all of them: the Procfile's engine, recorder,
bridge and fix roles (`bench.stack.start_stack`) on a database of its own — an SQLite file, or a
fresh PostgreSQL database when the suite runs on PostgreSQL (`make pg-test`) — and a Redis key
prefix of its own; users with API tokens and an instrument per test, made in that database."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

import pytest
import redis

from bench.fix_client import FixClient
from bench.stack import free_port, start_stack
from exchange.protocol.keys import key

SYMBOLS = ["FIXA", "FIXB", "FIXC", "FIXD", "FIXE", "FIXF", "FIXG", "FIXH", "FIXI", "FIXJ"]
USERS = 14

SETUP = """
import json
from decimal import Decimal
from django.contrib.auth import get_user_model
from exchange import services
for symbol in {symbols!r}:
    services.instrument_ensure(symbol=symbol, name=symbol, tick_size=Decimal("0.01"),
        lot_size=Decimal("1"), min_order_qty=Decimal("1"), max_order_qty=Decimal("1000"),
        reference_price=Decimal("100"))
tokens = []
for i in range({users}):
    user = get_user_model().objects.create_user(username=f"fix{{i}}", password=None)
    account = services.account_for_user(user)
    account.cash = Decimal("10000000")
    account.save()
    tokens.append([account.pk, services.api_token_create(user=user, name="fix")[1]])
print(json.dumps(tokens))
"""


def _postgres_database() -> tuple[str | None, callable]:
    """A fresh PostgreSQL database when the suite runs on PostgreSQL, and its drop."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None, lambda: None
    import psycopg

    server = os.environ.get("TEST_POSTGRES_URL", url)
    name = f"fbfixtest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return server.rsplit("/", 1)[0] + f"/{name}", drop


class Stack:
    def __init__(self, stack, port: int, tokens: list, work: Path) -> None:
        self.stack, self.port, self.work = stack, port, work
        self.accounts = [(account, token) for account, token in tokens]
        self._next_user = 0
        self._next_symbol = 0
        self.clients: list[FixClient] = []

    def user(self) -> tuple[int, str]:
        """A user no other test has used: (account id, token)."""
        user = self.accounts[self._next_user]
        self._next_user += 1
        return user

    def symbol(self) -> str:
        symbol = SYMBOLS[self._next_symbol]
        self._next_symbol += 1
        return symbol

    def client(
        self, comp_id: str, token: str, *, start: bool = True, store: str = "", **kwargs
    ) -> FixClient:
        """A QuickFIX initiator logged on as `comp_id` (its store under `store`, default the
        comp id: a client that reconnects with the same store carries on its sequence)."""
        for old in [c for c in self.clients if c.comp_id == comp_id]:
            # QuickFIX knows a session by its id in the whole process: the old one goes first.
            old.stop()
            old.initiator = None
            self.clients.remove(old)
        client = FixClient(
            self.port, comp_id, token, self.work / "clients" / (store or comp_id), **kwargs
        )
        self.clients.append(client)
        if start:
            client.start()
        return client

    def restart_fix(self) -> None:
        """Stops the FIX process and starts it again (the same database, key prefix and store)."""
        import subprocess

        from bench.stack import ROOT, procfile_roles

        process = self.stack.processes["fix"]
        process.terminate()
        # A clean stop: sessions logged out, QuickFIX's acceptors torn down without a crash.
        assert process.wait(timeout=20) == 0, (self.work / "fix.log").read_text()[-2000:]
        with open(self.work / "fix.log", "ab") as log:
            self.stack.processes["fix"] = subprocess.Popen(
                ["sh", "-c", f"exec {procfile_roles()['fix']}"],
                cwd=ROOT,
                env=self.stack.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_port(self.port, self.stack)

    @property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.stack.env["REDIS_URL"], decode_responses=True)


def wait_port(port: int, stack, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the FIX port {port} did not open")


@pytest.fixture(scope="session")
def fix_stack(tmp_path_factory):
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    work = tmp_path_factory.mktemp("fixstack")
    database_url, drop = _postgres_database()
    port = free_port()
    stack = start_stack(
        ["engine", "recorder", "bridge", "fix"],
        work=work,
        redis_url=redis_url,
        database_url=database_url,
        env={
            "FLASHBOOK_FIX_PORT": str(port),
            "FLASHBOOK_FIX_DIR": str(work / "fixstore"),
            "LOG_LEVEL": "WARNING",
            "PYTHONFAULTHANDLER": "1",  # a crash's traceback in the role's log
        },
        ready_symbols=[],
    )
    try:
        tokens = json.loads(
            stack.manage("shell", "-c", SETUP.format(symbols=SYMBOLS, users=USERS))
            .strip()
            .splitlines()[-1]
        )
        client = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + 30
        status = [key("status", s, prefix=stack.prefix) for s in SYMBOLS]
        snapshots = [key("ws", s, prefix=stack.prefix) for s in SYMBOLS]
        while client.exists(*status) < len(status) or client.exists(*snapshots) < len(snapshots):
            stack.check()
            if time.monotonic() > deadline:
                raise AssertionError("the engine or the bridge did not take the symbols on")
            time.sleep(0.1)
        client.close()
        wait_port(port, stack)
        live = Stack(stack, port, tokens, work)
        yield live
        for fix_client in live.clients:
            fix_client.stop(force=True)
    finally:
        stack.stop()
        drop()
