"""Fixtures of the recorder tests.

Redis: a real server (``REDIS_URL``), each test under a key prefix of its own whose keys are
deleted afterwards (``settings.FLASHBOOK_REDIS_PREFIX`` in-process, the environment for
subprocesses).

Database: tests that run the engine or recorder as subprocesses, or several recorders at once,
need a database other processes and threads can open. pytest-django's SQLite test database lives in
memory, so those tests ask for ``file_db``: a fresh SQLite file (a copy of one migrated once per
session) that the default connection of the test — and every connection opened while it runs —
uses instead. The session's own test database is left alone, whatever the order tests run in.
On PostgreSQL (``DATABASE_URL=postgres://...``) ``file_db`` is the session's test database
itself, as a URL: other processes can open it, and the tests that use it are transactional, so
what they write is committed for the subprocesses to see and flushed afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.core.management import call_command
from django.db import connections

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if "REDIS_URL" in os.environ:
            pytest.fail(f"no Redis answers at REDIS_URL={url}: {exc}")
        pytest.skip(f"no Redis at {url} (run `make py-test`, which starts one): {exc}")
    return url


@pytest.fixture
def redis_prefix(settings, redis_url):
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"rectest-{uuid.uuid4().hex[:12]}"
    settings.REDIS_URL = redis_url
    settings.FLASHBOOK_REDIS_PREFIX = prefix
    yield prefix
    client = redis.Redis.from_url(redis_url)
    batch = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(batch), 500):
        client.unlink(*batch[start : start + 500])
    client.close()


@pytest.fixture
def r(redis_prefix, redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@contextmanager
def _sqlite_file(path: Path):
    """Points the default database at an SQLite file: this thread's connection and any other
    opened meanwhile (other threads). Restores the previous connection afterwards."""
    shared = connections.settings["default"]  # the dict every new connection is built from
    if shared["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("these tests run other processes on an SQLite file")
    previous, previous_name = connections["default"], shared["NAME"]
    shared["NAME"] = str(path)
    current = connections.create_connection("default")
    connections["default"] = current
    try:
        yield path
    finally:
        current.close()
        shared["NAME"] = previous_name
        connections["default"] = previous


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory, django_db_setup, django_db_blocker) -> Path:
    path = tmp_path_factory.mktemp("recorder-db") / "template.sqlite3"
    with django_db_blocker.unblock(), _sqlite_file(path):
        call_command("migrate", verbosity=0, interactive=False)
    return path


def _postgres_url(settings_dict: dict) -> str:
    user, password = quote(settings_dict["USER"] or ""), quote(settings_dict["PASSWORD"] or "")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict["HOST"] or "localhost"
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    return f"postgres://{credentials}{host}{port}/{quote(settings_dict['NAME'])}"


@pytest.fixture
def file_db(request, tmp_path, django_db_blocker):
    """A database other processes can open, used by every connection while the test runs: on
    SQLite a migrated file of this test's own (a ``Path``; subprocesses get
    ``DATABASE_URL=sqlite:///{path}``), on PostgreSQL the test database's URL (a ``str``).
    ``support.database_url`` turns either into a ``DATABASE_URL``."""
    shared = connections.settings["default"]
    if shared["ENGINE"] == "django.db.backends.postgresql":
        request.getfixturevalue("django_db_setup")
        yield _postgres_url(connections["default"].settings_dict)
        return
    template = request.getfixturevalue("_migrated_template")
    path = tmp_path / "db.sqlite3"
    shutil.copyfile(template, path)
    with django_db_blocker.unblock(), _sqlite_file(path):
        yield path
