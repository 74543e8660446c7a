"""What the stack benchmarks (bench-api, bench-agents) share: a fresh PostgreSQL database when a
server answers (production's database; else the caller falls back to an SQLite file), how long
the recorders take to catch up, and the CPU time each part of the stack uses."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project, for its protocol

# The protocol's one definition of the Redis key names, for the benchmarks that read the streams.
from exchange.protocol.keys import key  # noqa: F401

CLK_TCK = os.sysconf("SC_CLK_TCK")
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


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


class CpuMeter:
    """CPU time used by groups of processes while it runs. The groups' processes are looked up
    again as it goes (a database backend may be replaced when its connection is): a process that
    starts counts from zero, one that ends with the last time it was seen."""

    def __init__(self, groups: dict[str, callable]) -> None:
        self.groups = groups
        self.start: dict[str, dict[int, float]] = {}
        self.last: dict[str, dict[int, float]] = {name: {} for name in groups}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_every, args=(0.2,), daemon=True)

    def _sample(self) -> None:
        for name, pids in self.groups.items():
            seen = self.last[name]
            for pid in pids():
                used = cpu_seconds(pid)
                if used:
                    seen[pid] = used

    def _sample_every(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self._sample()
        self.start = {name: dict(seen) for name, seen in self.last.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def used(self) -> dict[str, float]:
        return {
            name: sum(used - self.start[name].get(pid, 0.0) for pid, used in seen.items())
            for name, seen in self.last.items()
        }


def stop_processes(processes, timeout: float = 15.0) -> None:
    """SIGTERM to every process, then a wait for each (SIGKILL for one still running after
    `timeout` seconds): the stack a benchmark started, stopped together."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def delete_prefix(client, prefix: str) -> None:
    """Deletes every Redis key a benchmark's stack made under its key prefix."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.unlink(*keys[start : start + 500])
