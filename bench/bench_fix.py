"""FIX benchmark (issue 18): order entry through FIX 4.4 with QuickFIX initiators, the whole stack
behind it as it runs in production.

    make bench-fix
    python bench/bench_fix.py [--seconds 20] [--clients 32] [--window 1]

What runs (all torn down afterwards): as `make bench-api` (`bench_api.py`) — a fresh PostgreSQL
database (SQLite with ``--database sqlite`` or when none answers) with the instrument ``BENCH`` and
one user, account and API token per client, a fresh Redis key prefix, the engine worker and the
recorder — and instead of the web server the FIX acceptor (``manage.py run_fix``) and the bridge,
which carries the engine's executions to it.

The load: one QuickFIX initiator per user (32 by default), each its own FIX session logged on with
the user's token, sending NewOrderSingles one after the other (``--window`` at a time) for 20 s:
the same orders as `make bench-api` — GTC limit orders of 1 to 5 lots, buy or sell at random,
priced within 5 ticks of 100.00 either side, so about half of them trade. An order is answered by
its first ExecutionReport: New (the engine accepted it — its fills follow) or Rejected, the same
point as `bench-api`'s ``wait=true`` answer. Latency is from just before the order is handed to
QuickFIX to that report's arrival. ``errors`` counts rejects and orders left unanswered.

The per-user order throttle (FLASHBOOK_ORDER_RATE, 6000/min) is raised for the run: at 1.5 times
`bench-api`'s rate, 32 users would each reach it, and it would measure the throttle, not FIX.

The last line of output is the JSON summary, also written to ``bench/results/fix.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench_api import SYMBOL, percentile, prepare, spawn, stop
from fix_client import FixClient
from stack import (
    CpuMeter,
    caught_up_after,
    delete_prefix,
    free_port,
    key,
    postgres_answers,
    postgres_database,
    postgres_pids,
    postgres_url,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "fix.json"


class Load:
    """One session's orders: the next goes as soon as one is answered, until the deadline."""

    def __init__(self, index: int, window: int) -> None:
        self.index, self.window = index, window
        self.rng = random.Random(index)
        self.sent: dict[str, float] = {}
        self.count = 0
        self.deadline = 0.0
        self.client: FixClient | None = None

    def reset(self, out: dict, lock: threading.Lock) -> None:
        self.out, self.lock = out, lock
        self.sent.clear()
        self.finished = threading.Event()

    def start(self, deadline: float) -> None:
        self.deadline = deadline
        for _ in range(self.window):
            self.send()

    def send(self) -> None:
        if time.perf_counter() >= self.deadline:
            if not self.sent:
                self.finished.set()
            return
        self.count += 1
        clordid = f"{self.index}-{self.count}"
        price = 10_000 + self.rng.randint(-5, 5)
        side = "1" if self.rng.random() < 0.5 else "2"
        self.sent[clordid] = time.perf_counter()
        self.client.new_order(
            clordid,
            SYMBOL,
            side,
            str(self.rng.randint(1, 5)),
            f"{price // 100}.{price % 100:02d}",
        )

    def on_message(self, message) -> None:
        if message.type != "8":
            return
        started = self.sent.pop(message.get(11), None)
        if started is None:
            return  # a fill of an order answered already
        latency = (time.perf_counter() - started) * 1000
        with self.lock:
            self.out["latencies"].append(latency)
            if message.get(150) != "0":
                self.out["rejected"] += 1
                if len(self.out["samples"]) < 5:
                    self.out["samples"].append(message.get(58))
        self.send()


def connect(port: int, tokens: list[str], window: int, work: Path) -> list[Load]:
    """One logged-on session per token, with its load (kept for the warm-up and the run)."""
    loads = []
    for index, token in enumerate(tokens):
        load = Load(index, window)
        comp_id = f"BENCH{index}"
        load.client = FixClient(
            port, comp_id, token, work / "clients" / comp_id, on_message=load.on_message
        ).start()
        loads.append(load)
    return loads


def run_load(loads: list[Load], seconds: float) -> dict:
    out = {"latencies": [], "rejected": 0, "samples": []}
    lock = threading.Lock()
    start = time.perf_counter()
    for load in loads:
        load.reset(out, lock)
    for load in loads:
        load.start(start + seconds)
    end = time.monotonic() + seconds + 10
    for load in loads:
        load.finished.wait(timeout=max(0.0, end - time.monotonic()))
    out["elapsed"] = time.perf_counter() - start
    out["errors"] = out["rejected"] + sum(len(load.sent) for load in loads)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--window", type=int, default=1, help="orders in flight per session")
    parser.add_argument(
        "--database",
        choices=("auto", "postgresql", "sqlite"),
        default="auto",
        help="auto: PostgreSQL when one answers at TEST_POSTGRES_URL, else SQLite",
    )
    options = parser.parse_args()

    import redis

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"fbbench-fix-{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix="fbbench-fix-"))
    drop_db = None
    server = postgres_url()
    use_postgres = options.database == "postgresql" or (
        options.database == "auto" and postgres_answers(server)
    )
    if use_postgres:
        database_url, drop_db = postgres_database(server)
    else:
        database_url = f"sqlite:///{tmp / 'db.sqlite3'}"
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flashbook_site.settings",
        "FLASHBOOK_ENV_FILE": str(tmp / "none.env"),
        "DEBUG": "0",
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "FLASHBOOK_REDIS_PREFIX": prefix,
        "FLASHBOOK_FIX_PORT": str(port),
        "FLASHBOOK_FIX_DIR": str(tmp / "fix"),
        "FLASHBOOK_ORDER_RATE": "1000000/min",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    procs = {}
    rds = redis.Redis.from_url(redis_url)
    try:
        tokens = prepare(env, options.clients)
        manage = [sys.executable, "manage.py"]
        procs["engine"] = spawn([*manage, "run_engine", "--symbols", SYMBOL], env, tmp / "e.log")
        procs["recorder"] = spawn(
            [*manage, "run_recorder", "--symbols", SYMBOL], env, tmp / "r.log"
        )
        procs["bridge"] = spawn([*manage, "run_bridge"], env, tmp / "b.log")
        procs["fix"] = spawn([*manage, "run_fix"], env, tmp / "fix.log")
        deadline = time.monotonic() + 60
        ready = (key("status", SYMBOL, prefix=prefix), key("ws", SYMBOL, prefix=prefix))
        while rds.exists(*ready) < len(ready):
            if time.monotonic() > deadline:
                raise RuntimeError("the engine or the bridge did not start")
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited: {(tmp / 'fix.log').read_text()[-2000:]}")
            time.sleep(0.2)

        print("bench-fix: the stack is up; warming up", file=sys.stderr)
        # Warm up (sessions, caches, the engine's first batches); not measured.
        loads = connect(port, tokens, options.window, tmp)
        warm = run_load(loads, 1.0)
        print(f"bench-fix: warm-up: {len(warm['latencies'])} answered", file=sys.stderr)
        redis_pid = int(rds.info("server")["process_id"])
        meter = CpuMeter(
            {
                "fix": lambda: [procs["fix"].pid],
                "bridge": lambda: [procs["bridge"].pid],
                "engine": lambda: [procs["engine"].pid],
                "recorder": lambda: [procs["recorder"].pid],
                **({"postgresql": postgres_pids} if use_postgres else {}),
                "redis": lambda: [redis_pid],
            }
        )
        client_before = time.process_time()
        print("bench-fix: measuring", file=sys.stderr, flush=True)
        with meter:
            out = run_load(loads, options.seconds)
        for load in loads:
            load.client.stop()
        elapsed = out["elapsed"]
        cpu = meter.used()
        cpu["client"] = time.process_time() - client_before
        latencies = out["latencies"]
        answered = len(latencies)
        ok = answered - out["rejected"]
        lag_s = caught_up_after(rds, key("evt", SYMBOL, prefix=prefix))
        summary = {
            "bench": "fix",
            "orders_per_s": round(ok / elapsed),
            "p50_ms": round(percentile(latencies, 0.50), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "errors": out["errors"],
            "fix_cpu_us_per_order": round(cpu["fix"] / max(answered, 1) * 1e6, 1),
        }
        details = {
            "seconds": round(elapsed, 1),
            "clients": options.clients,
            "window": options.window,
            "database": "postgresql" if drop_db else "sqlite",
            "cpus": os.cpu_count(),
            "answered": answered,
            "error_samples": out["samples"],
            "mean_ms": round(statistics.fmean(latencies), 2) if latencies else 0,
            "latency_ms": {
                f"p{q:g}": round(percentile(latencies, q / 100), 2)
                for q in (50, 90, 95, 99, 99.9, 100)
            },
            "cpu_share_of_one_core": {k: round(v / elapsed, 2) for k, v in cpu.items()},
            "cpu_us_per_order": {k: round(v / max(answered, 1) * 1e6, 1) for k, v in cpu.items()},
            "recorder_caught_up_after_s": lag_s,
        }
        print(json.dumps(details, indent=1), file=sys.stderr)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({**summary, "details": details}, indent=1) + "\n")
        print(json.dumps(summary))
        return 0
    finally:
        for proc in reversed(list(procs.values())):
            stop(proc)
        delete_prefix(rds, prefix)
        rds.close()
        if drop_db is not None:
            drop_db()
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
