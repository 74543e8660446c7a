"""A real Flashbook stack for tests that talk to it as a client would: uvicorn serving
`flashbook_site.asgi:application` and the roles a test asks for (the engine worker, the recorder,
the bridge) as subprocesses, on a Redis key prefix of its own and a database of its own — an
SQLite file, or a fresh PostgreSQL database when one answers at `TEST_POSTGRES_URL` (else the
test is skipped). The test process's own default connection points at that database meanwhile,
so that it can make users and tokens the stack sees."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.db import connections

from exchange.protocol.keys import key as redis_key
from tests.recorder.conftest import _sqlite_file

ROOT = Path(__file__).resolve().parents[1]
ROLES = {
    # ACME only, told on the command line: no database read, no rules sent.
    "engine": ["manage.py", "run_engine", "--symbols", "ACME"],
    # Every enabled instrument, with the rules the database gives them (as `make run`).
    "engine-all": ["manage.py", "run_engine"],
    "recorder": ["manage.py", "run_recorder"],
    "bridge": ["manage.py", "run_bridge"],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def postgres_database():
    """A fresh PostgreSQL database that this process's default connection (and every connection
    opened meanwhile) uses; dropped afterwards. Skips when no server answers."""
    import environ
    import psycopg

    base = os.environ.get("TEST_POSTGRES_URL")
    if not base:
        pytest.skip("TEST_POSTGRES_URL is not set")
    try:
        psycopg.connect(base, connect_timeout=2).close()
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL at TEST_POSTGRES_URL: {exc}")
    name = f"fbtest_oe_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + f"/{name}"
    shared = connections.settings["default"]
    saved, previous = dict(shared), connections["default"]
    shared.clear()
    shared.update({**saved, "OPTIONS": {}, **environ.Env.db_url_config(url)})
    current = connections["default"] = connections.create_connection("default")
    try:
        yield url
    finally:
        current.close()
        shared.clear()
        shared.update(saved)
        connections["default"] = previous
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database(kind: str, folder: Path):
    if kind == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        path = folder / "db.sqlite3"
        with _sqlite_file(path):
            yield f"sqlite:///{path}"


@dataclass
class LiveStack:
    port: int
    prefix: str
    redis_url: str
    folder: Path

    def key(self, *parts: str) -> str:
        return redis_key(*parts, prefix=self.prefix)


@contextmanager
def live_stack(kind: str, folder: Path, roles: list[str], env: dict[str, str], setup=None):
    """Runs uvicorn and `roles` (names of `ROLES`) against a fresh database of `kind` ("sqlite"
    or "postgresql"): migrated, then `setup()` (which makes the instruments the roles serve);
    yields once uvicorn answers and the engine (if any) has taken ACME on."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url}: {exc}")
    prefix = f"fbtest-ls-{uuid.uuid4().hex[:10]}"
    port = free_port()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flashbook_site.settings",
        "FLASHBOOK_ENV_FILE": "",
        "DEBUG": "0",
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "REDIS_URL": url,
        "FLASHBOOK_REDIS_PREFIX": prefix,
        **env,
    }
    processes = []
    with database(kind, folder) as database_url:
        from django.core.management import call_command

        environment["DATABASE_URL"] = database_url
        call_command("migrate", verbosity=0, interactive=False)
        if setup is not None:
            setup()
        server = [
            *["-m", "uvicorn", "flashbook_site.asgi:application", "--port", str(port)],
            *["--no-access-log", "--log-level", "warning", "--lifespan", "off"],
        ]
        try:
            for name, args in [*((role, ROLES[role]) for role in roles), ("web", server)]:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, *args],
                        cwd=ROOT,
                        env=environment,
                        stdout=subprocess.DEVNULL,
                        stderr=open(folder / f"{name}.log", "wb"),
                    )
                )

            def up() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    return True
                except OSError:
                    return False

            wait_until(up, 30, "uvicorn")
            if "engine" in roles or "engine-all" in roles:
                status = redis.Redis.from_url(url)
                status_key = redis_key("status", "ACME", prefix=prefix)
                wait_until(lambda: status.exists(status_key), 30, "the engine")
                status.close()
            yield LiveStack(port, prefix, url, folder)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
            client = redis.Redis.from_url(url)
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
            shutil.rmtree(folder, ignore_errors=True)
