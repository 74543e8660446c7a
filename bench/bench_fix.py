"""FIX benchmark (issue 18): order entry through FIX 4.4 with QuickFIX initiators, the whole stack
behind it as it runs in production.

    make bench-fix
    python bench/bench_fix.py [--seconds 20] [--clients 32] [--window 1]

What runs (all torn down afterwards): as `make bench-api` (`bench_api.py`) — a fresh PostgreSQL
database (SQLite with ``--database sqlite`` or when none answers) with the instrument ``BENCH`` and
one user, account and API token per client, a fresh Redis key prefix, the engine worker and the
recorder — and instead of the web server the FIX acceptor (``manage.py run_fix``, which reads the
engine's executions from its event streams) and the bridge (market data, idle here).

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
import random
import sys
import threading
import time
from pathlib import Path

from bench_api import SYMBOL, bench_stack, database_options, prepare, report
from fix_client import FixClient
from stack import (
    CpuMeter,
    free_port,
    key,
    postgres_pids,
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
    database_options(parser)
    options = parser.parse_args()

    port = free_port()
    with bench_stack("fix", options) as stack:
        stack.env["FLASHBOOK_FIX_PORT"] = str(port)
        stack.env["FLASHBOOK_FIX_DIR"] = str(stack.tmp / "fix")
        tokens = prepare(stack.env, options.clients)
        manage = [sys.executable, "manage.py"]
        engine = stack.spawn("engine", [*manage, "run_engine", "--symbols", SYMBOL])
        recorder = stack.spawn("recorder", [*manage, "run_recorder", "--symbols", SYMBOL])
        bridge = stack.spawn("bridge", [*manage, "run_bridge"])
        fix_process = stack.spawn("fix", [*manage, "run_fix"])
        deadline = time.monotonic() + 60
        ready = (key("status", SYMBOL, prefix=stack.prefix), key("ws", SYMBOL, prefix=stack.prefix))
        while stack.rds.exists(*ready) < len(ready):
            if time.monotonic() > deadline:
                raise RuntimeError("the engine or the bridge did not start")
            stack.check_running()
            time.sleep(0.2)

        print("bench-fix: the stack is up; warming up", file=sys.stderr)
        # Warm up (sessions, caches, the engine's first batches); not measured.
        loads = connect(port, tokens, options.window, stack.tmp)
        warm = run_load(loads, 1.0)
        print(f"bench-fix: warm-up: {len(warm['latencies'])} answered", file=sys.stderr)
        redis_pid = stack.redis_pid()
        meter = CpuMeter(
            {
                "fix": lambda: [fix_process.pid],
                "bridge": lambda: [bridge.pid],
                "engine": lambda: [engine.pid],
                "recorder": lambda: [recorder.pid],
                **({"postgresql": postgres_pids} if stack.use_postgres else {}),
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
        answered = len(out["latencies"])
        summary = {
            "bench": "fix",
            "orders_per_s": round((answered - out["rejected"]) / elapsed),
            "errors": out["errors"],
            "fix_cpu_us_per_order": round(cpu["fix"] / max(answered, 1) * 1e6, 1),
        }
        details = {
            "clients": options.clients,
            "window": options.window,
            "answered": answered,
            "error_samples": out["samples"],
        }
        report(
            RESULTS,
            summary,
            stack,
            latencies=out["latencies"],
            elapsed=elapsed,
            cpu=cpu,
            orders=answered,
            details=details,
        )
        return 0


if __name__ == "__main__":
    sys.exit(main())
