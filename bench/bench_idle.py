"""Cost at rest (issue 16): what the demo market costs while nobody uses it.

    make bench-idle
    python bench/bench_idle.py [--seconds 60] [--settle 10] [--database sqlite|postgresql]
                               [--redis own|shared]

What runs (all torn down afterwards): the stack as `make run` starts it — the roles and commands
of the `Procfile` (web, engine, recorder, bridge, agents runner), on a fresh database
migrated and seeded with `manage.py seed_demo` as the Makefile's `run` target does (an SQLite
file by default, as a new user gets; `--database postgresql` for a fresh database on the
`TEST_POSTGRES_URL` server), with the settings of the `.env` make writes (DEBUG=1), and a fresh
Redis key prefix (deleted afterwards) on a Redis server of its own (`--redis own`, the default
when `redis-server` is installed: started as `scripts/ensure_redis.sh` starts one, without
persistence, and stopped afterwards), so that the Redis CPU measured is this stack's alone; or on
the one at `REDIS_URL` (`--redis shared`), whose CPU then includes everyone else's.

Once the market runs (the runner's heartbeat is there and orders reach the journal) and has
settled for `--settle` seconds, the CPU time of each process (and its children) is measured for
`--seconds` seconds, as a share of one core; `redis` is the Redis server's CPU over the same
window (with `--redis shared`, everything it served: this stack's share and anyone else's),
`postgresql` every
PostgreSQL server process when the stack runs on one. `orders_per_s` counts the NEW commands
the journal took in the window. The last line of output is the JSON summary, also written to
`bench/results/idle.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from stack import (
    CpuMeter,
    children,
    free_port,
    postgres_answers,
    postgres_database,
    postgres_pids,
    postgres_url,
    procfile_roles,
    start_stack,
    stop_processes,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "idle.json"
START_LIMIT_S = 120.0


def with_children(pid: int) -> list[int]:
    """A process and its descendants (uvicorn's workers, should it start some)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children(current)
    return found


def new_orders(client, prefix: str, since_ms: int, until_ms: int | None = None) -> int:
    """NEW commands every symbol's journal took between the two times (stream ids are ms)."""
    total = 0
    for key in client.scan_iter(match=f"{prefix}:cmd:*", count=1000):
        if client.type(key) != b"stream":
            continue
        end = "+" if until_ms is None else str(until_ms - 1)
        entries = client.xrange(key, min=str(since_ms), max=end)
        total += sum(1 for _, fields in entries if fields.get(b"t") == b"new")
    return total


def own_redis(folder: Path) -> tuple[str, subprocess.Popen]:
    """A redis-server on a free loopback port, as `scripts/ensure_redis.sh` starts one (no
    persistence), for this run alone."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=open(folder / "redis.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return url, server
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
        finally:
            client.close()


def wait_for_market(client, prefix: str, processes: dict[str, subprocess.Popen]) -> None:
    """Until the runner's heartbeat is there and orders reach the journal."""
    deadline = time.monotonic() + START_LIMIT_S
    started = int(time.time() * 1000)
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}")
        if client.hlen(f"{prefix}:agents:runners") and new_orders(client, prefix, started) >= 5:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the market did not start within {START_LIMIT_S:.0f} s")


def _interrupted(signum, frame):
    raise KeyboardInterrupt  # SIGTERM too tears the stack down (the `finally` below)


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="Measured window.")
    parser.add_argument(
        "--settle", type=float, default=10.0, help="Seconds from the first orders to the window."
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="sqlite (default, as `make run` without DATABASE_URL) or a fresh PostgreSQL "
        "database on TEST_POSTGRES_URL",
    )
    parser.add_argument(
        "--redis",
        choices=("own", "shared"),
        default="own" if shutil.which("redis-server") else "shared",
        help="own (default when redis-server is installed): a Redis server for this run alone; "
        "shared: the one at REDIS_URL",
    )
    args = parser.parse_args()

    prefix = f"fbbench-idle-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="fb-bench-idle-"))
    drop_db = None
    if args.database == "postgresql":
        if not postgres_answers(postgres_url()):
            sys.exit(f"No PostgreSQL answers at {postgres_url()}.")
        database_url, drop_db = postgres_database(postgres_url())
    else:
        database_url = f"sqlite:///{folder / 'db.sqlite3'}"
    redis_server = None
    if args.redis == "own":
        try:
            redis_url, redis_server = own_redis(folder)
        except BaseException:
            if drop_db is not None:
                drop_db()
            raise
    else:
        redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(redis_url)
    stack = None
    processes: dict[str, subprocess.Popen] = {}
    try:
        stack = start_stack(
            procfile_roles(),
            work=folder,
            redis_url=redis_url,
            database_url=database_url,
            prefix=prefix,
            setup=[["seed_demo"]],
            timeout=START_LIMIT_S,
        )
        processes = stack.processes
        wait_for_market(client, prefix, processes)
        time.sleep(args.settle)
        redis_pid = int(client.info("server")["process_id"])
        groups = {
            name: (lambda pid=process.pid: with_children(pid))
            for name, process in processes.items()
        }
        groups["redis"] = lambda: [redis_pid]  # 0 when Redis is not on this machine
        if drop_db is not None:
            groups["postgresql"] = postgres_pids
        with CpuMeter(groups) as meter:
            window_from = time.time()
            time.sleep(args.seconds)
            window_to = time.time()
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited during the window: {process.returncode}")
        elapsed = window_to - window_from
        orders = new_orders(client, prefix, int(window_from * 1000), int(window_to * 1000))
        shares = {name: round(seconds / elapsed, 4) for name, seconds in meter.used().items()}
        summary = {
            "bench": "idle",
            "cpu_share_of_one_core": shares,
            "total": round(sum(shares.values()), 4),
            "orders_per_s": round(orders / elapsed, 2),
        }
    except BaseException:
        for name in processes:
            tail = stack.tail(name, 2000)
            if tail.strip():
                print(f"--- {name} (last lines)\n{tail}", file=sys.stderr)
        raise
    finally:
        if stack is not None:
            stack.stop()
        if redis_server is not None:
            stop_processes([redis_server])
        shutil.rmtree(folder, ignore_errors=True)
        if drop_db is not None:
            drop_db()
    print(
        "  ".join(f"{name} {share:.3f}" for name, share in summary["cpu_share_of_one_core"].items())
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
