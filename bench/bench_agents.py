"""Agents runner benchmark (issue 6): the runner's sustained order rate with the engine worker
and the recorder running.

    make bench-agents
    python bench/bench_agents.py [--seconds 20] [--agents 400] [--rate 50] [--threads 1]
                                 [--database auto|postgresql|sqlite]

What runs (all torn down afterwards): a fresh database — on PostgreSQL, production's database,
when one answers at `TEST_POSTGRES_URL` (else, or with `--database sqlite`, an SQLite file) —
migrated, with one instrument BENCH and `--agents` noise traders made through `agents.services`
(each waking `--rate` times a second on its own clock: by default 20,000 wakes a second offered,
the target, so the figure is what the stack sustains), a fresh Redis key prefix on `REDIS_URL`
(deleted afterwards),
the engine worker, the recorder and `manage.py run_agents --duration`. The noise traders send a
new order at every wake and tidy their old ones (cancels), about a quarter of them marketable.

Measured from the journal (what reached the exchange), over the runner's trading window:
`orders_per_s` = NEW commands per second, `commands_per_s` = every command (NEW, cancel,
replace). The last line of output is the JSON summary, also written to
`bench/results/agents.json`, with how long the recorder took to catch up once the runner
stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from stack import (
    CpuMeter,
    caught_up_after,
    delete_prefix,
    key,
    postgres_answers,
    postgres_database,
    postgres_pids,
    postgres_url,
    stop_processes,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "agents.json"
SYMBOL = "BENCH"
TARGET_ORDERS_PER_S = 20_000
METER_SKIP_S = 3.0  # the runner's start-up: loading and starting the agents

SETUP = """
from decimal import Decimal as D
from agents.services import agent_config_create
from exchange.services import instrument_ensure
instrument_ensure(symbol="BENCH", name="Bench", tick_size=D("0.01"), lot_size=D("1"),
                  min_order_qty=D("1"), max_order_qty=D("100000"), reference_price=D("100.00"))
for n in range({agents}):
    agent_config_create(name=f"bench-{{n:03d}}", strategy="noise", symbol="BENCH",
                        params={{"size_max": 5, "cross_prob": 0.25, "max_open": 5}},
                        wake_rate_hz={rate}, max_position=1000000, max_order_qty=1000,
                        initial_cash=D("10000000"), min_bankroll=D("0"))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--agents",
        type=int,
        default=400,
        help="noise traders (default 400: at 50 wakes/s each, 20,000 orders/s offered)",
    )
    parser.add_argument("--rate", type=float, default=50.0, help="Wakes per second per agent.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--database",
        choices=("auto", "postgresql", "sqlite"),
        default="auto",
        help="auto: a fresh PostgreSQL database when one answers at TEST_POSTGRES_URL, else SQLite",
    )
    args = parser.parse_args()

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"fbbench-agents-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="fb-bench-agents-"))
    drop_db = None
    if args.database == "postgresql" or (
        args.database == "auto" and postgres_answers(postgres_url())
    ):
        database_url, drop_db = postgres_database(postgres_url())
    else:
        database_url = f"sqlite:///{folder / 'db.sqlite3'}"
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        FLASHBOOK_REDIS_PREFIX=prefix,
        FLASHBOOK_ENV_FILE="",
        DEBUG="0",
        SECRET_KEY="bench-agents-" + uuid.uuid4().hex,
        LOG_LEVEL="WARNING",
    )
    manage = [sys.executable, "manage.py"]
    client = redis.Redis.from_url(redis_url)
    processes: list[subprocess.Popen] = []
    try:
        subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        setup = SETUP.format(agents=args.agents, rate=args.rate)
        subprocess.run([*manage, "shell", "-c", setup], cwd=ROOT, env=env, check=True)
        for role in (["run_engine", "--symbols", SYMBOL], ["run_recorder", "--symbols", SYMBOL]):
            processes.append(
                subprocess.Popen(
                    [*manage, *role], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                    stderr=open(folder / f"{role[0]}.log", "wb"),
                )
            )  # fmt: skip
        time.sleep(1.0)
        runner = subprocess.Popen(
            [*manage, "run_agents", "--seed", "1", "--threads", str(args.threads),
             "--duration", str(args.seconds)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=open(folder / "run_agents.log", "wb"),
            text=True,
        )  # fmt: skip
        processes.append(runner)  # stopped with the others should anything below fail
        # Where the CPU goes, measured over the middle of the trading window (past the runner's
        # start-up, before its shutdown) and set against the orders journaled meanwhile.
        redis_pid = int(client.info("server")["process_id"])
        meter = CpuMeter(
            {
                "runner": lambda: [runner.pid],
                "engine": lambda: [processes[0].pid],
                "recorder": lambda: [processes[1].pid],
                **({"postgresql": postgres_pids} if drop_db else {}),
                "redis": lambda: [redis_pid],  # 0 when Redis is not on this machine
            }
        )
        measured = max(1.0, args.seconds - METER_SKIP_S - 2.0)
        time.sleep(METER_SKIP_S)
        with meter:
            meter_from = time.time()
            time.sleep(measured)
            meter_to = time.time()
        out, _ = runner.communicate()
        if runner.returncode != 0:
            raise RuntimeError((folder / "run_agents.log").read_text()[-3000:])
        recorder_lag = caught_up_after(client, key("evt", SYMBOL, prefix=prefix), limit_s=60)
        entries = client.xrange(key("cmd", SYMBOL, prefix=prefix))
        news = [int(i.decode().partition("-")[0]) for i, f in entries if f.get(b"t") == b"new"]
        all_ms = [int(i.decode().partition("-")[0]) for i, _ in entries]
        window_s = max(1e-3, (max(news) - min(news)) / 1000) if len(news) > 1 else args.seconds
        metered = sum(1 for ms in news if meter_from * 1000 <= ms < meter_to * 1000)
        cpu = meter.used()
        summary = {
            "bench": "agents",
            "orders_per_s": round(len(news) / window_s, 1),
            "commands_per_s": round(len(all_ms) / window_s, 1),
            "orders": len(news),
            "commands": len(all_ms),
            "window_s": round(window_s, 2),
            "agents": args.agents,
            "wake_rate_hz": args.rate,
            "threads": args.threads,
            "database": "postgresql" if drop_db else "sqlite",
            "recorder_caught_up_after_s": recorder_lag,
            "target_orders_per_s": TARGET_ORDERS_PER_S,
            "cpu_us_per_order": {
                name: round(seconds / max(1, metered) * 1e6, 1) for name, seconds in cpu.items()
            },
            "cpu_us_per_order_total": round(sum(cpu.values()) / max(1, metered) * 1e6, 1),
            "cores_busy": round(sum(cpu.values()) / (meter_to - meter_from), 2),
            "cpus": os.cpu_count(),
            "runner": json.loads(out.strip().splitlines()[-1]),
        }
    finally:
        stop_processes(processes)
        delete_prefix(client, prefix)
        shutil.rmtree(folder, ignore_errors=True)
        if drop_db is not None:
            drop_db()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
