"""What the stack benchmarks (bench-api, bench-agents) share: a fresh PostgreSQL database when a
server answers (production's database; else the caller falls back to an SQLite file), and how
long the recorders take to catch up."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def postgres_url() -> str:
    """The server to make benchmark databases on: `TEST_POSTGRES_URL`, as for the tests."""
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def postgres_answers(base_url: str) -> bool:
    try:
        import psycopg

        psycopg.connect(base_url, connect_timeout=2).close()
        return True
    except Exception:
        return False


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process (the backends serving the stack are among them)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def postgres_database(base_url: str) -> tuple[str, Callable[[], None]]:
    """A fresh database on the TEST_POSTGRES_URL server, and a function that drops it."""
    import psycopg

    name = f"fbbench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base_url.rsplit("/", 1)[0] + f"/{name}"

    def drop():
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


def caught_up_after(client, stream: str, limit_s: float = 30.0) -> float | None:
    """Seconds until the recorders' group has read and acknowledged the whole event stream (None:
    not within `limit_s`, or Redis cannot say)."""
    import redis

    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        try:
            groups = client.xinfo_groups(stream)
        except redis.ResponseError:
            groups = []  # no group yet
        except redis.RedisError:
            return None
        if groups and not groups[0].get("lag") and not groups[0].get("pending"):
            return round(time.monotonic() - start, 2)
        time.sleep(0.1)
    return None
