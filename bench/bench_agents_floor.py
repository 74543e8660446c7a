"""The agents' order flow with nothing but the parts no runner can do without: how many orders a
second this machine sustains at best, whatever the database, the recorder and the gateway's
checks cost. It bounds what `make bench-agents` can reach here.

    make bench-agents-floor
    python bench/bench_agents_floor.py [--seconds 10] [--agents 400] [--rate 50]
                                       [--processes 1,2]

What runs: the real engine worker on a fresh Redis key prefix, and the same population as
bench-agents — `--agents` noise traders (the real strategy and parameters), each on its own
Poisson clock of `--rate` wakes a second — whose NEWs and cancels go through the journal's own
asyncio functions (the gateway's append script, coalesced as in the runner). Nothing else: no
database (no order rows, no recorder), no gateway validation, no account checks, and the agents
do not follow their fills (an order counts as resting until its agent cancels it; a cancel of an
order that has traded is one the engine refuses, a command all the same). The market an agent
sees is fixed around the reference price, so a quarter of the orders still cross and trade.

The agents run in one process (the runner's design: one asyncio loop) and then, spread evenly,
in as many processes as the machine has cores: the first is what one runner process can send at
most, the second what the machine can. Measured from the journal over the middle of the window:
NEW commands per second, and each part's CPU time per order.

The last line of output is the JSON summary, also written to `bench/results/agents_floor.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from stack import CpuMeter, delete_prefix, key, stop_processes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "agents_floor.json"
SYMBOL = "FLOOR"
TARGET_ORDERS_PER_S = 20_000
REFERENCE_TICKS = 10_000
# bench-agents' noise traders (`bench_agents.SETUP`).
NOISE_PARAMS = {"size_max": 5, "cross_prob": 0.25, "max_open": 5}
WARM_UP_S = 2.0


def worker(index: int, count: int, agents: int, rate: float, seconds: float) -> None:
    """One process's share of the agents: agent n runs here when n % count == index."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import uvloop

    from agents.strategies.base import AgentState, Cancel, MarketView, OpenOrder, Place
    from agents.strategies.noise import NoiseStrategy
    from exchange.orders import journal

    async def agent(number: int) -> None:
        rng = random.Random(number)
        strategy = NoiseStrategy(NOISE_PARAMS, rng)
        state = AgentState(max_position=10**9)
        account = number + 1
        while True:
            await asyncio.sleep(rng.expovariate(rate))
            now = time.time_ns()
            view = MarketView(
                time_ns=now,
                bid=(REFERENCE_TICKS - 1, 10),
                ask=(REFERENCE_TICKS + 1, 10),
                reference=REFERENCE_TICKS,
            )
            for action in strategy.decide(view, state):
                if isinstance(action, Place):
                    fields = {
                        "t": "new",
                        "acct": account,
                        "side": action.side,
                        "type": "market" if action.price is None else "limit",
                        "tif": action.tif,
                        "qty": action.qty,
                        "maxpos": 10**9,
                        "stp": "cancel_newest",
                    }
                    if action.price is not None:
                        fields["px"] = action.price
                    # No record and no client order id: only the journal and the engine.
                    new = journal.NewEntry(account, fields, None, None)
                    order_id = await journal.aappend_new(SYMBOL, new)
                    if action.tif == "gtc":
                        state.open_orders[order_id] = OpenOrder(
                            side=action.side,
                            price=action.price,
                            qty=action.qty,
                            tag=action.tag,
                            time_ns=now,
                        )
                elif isinstance(action, Cancel):
                    state.open_orders.pop(action.key, None)
                    cancel = {"t": "cancel", "id": action.key, "acct": account}
                    await journal.aappend(SYMBOL, cancel)

    async def main() -> None:
        tasks = [asyncio.create_task(agent(n)) for n in range(index, agents, count)]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    uvloop.run(main())


def run(processes: int, args, env: dict[str, str], client: redis.Redis) -> dict:
    """One configuration: a fresh journal, the engine and `processes` agent processes."""
    prefix = f"fbbench-floor-{uuid.uuid4().hex[:8]}"
    env = dict(env, FLASHBOOK_REDIS_PREFIX=prefix)
    folder = Path(env["FLOOR_FOLDER"])
    started: list[subprocess.Popen] = []
    try:
        engine = subprocess.Popen(
            [sys.executable, "manage.py", "run_engine", "--symbols", SYMBOL],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=open(folder / f"engine-{processes}.log", "wb"),
        )  # fmt: skip
        started.append(engine)
        time.sleep(1.0)
        lasting = str(args.seconds + WARM_UP_S + 1.0)
        workers = []
        for i in range(processes):
            command = [sys.executable, __file__, "--worker", f"{i}/{processes}"]
            command += ["--agents", str(args.agents), "--rate", str(args.rate)]
            log = open(folder / f"worker-{processes}-{i}.log", "wb")
            workers.append(
                subprocess.Popen(
                    [*command, "--seconds", lasting],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
        started += workers
        redis_pid = int(client.info("server")["process_id"])
        meter = CpuMeter(
            {
                "agents": lambda: [w.pid for w in workers],
                "engine": lambda: [engine.pid],
                "redis": lambda: [redis_pid],  # 0 when Redis is not on this machine
            }
        )
        time.sleep(WARM_UP_S)  # imports, Django, the agents' first wakes
        with meter:
            meter_from = time.time()
            time.sleep(args.seconds)
            meter_to = time.time()
        for w in workers:
            if w.wait(timeout=30) != 0:
                raise RuntimeError((folder / f"worker-{processes}-0.log").read_text()[-3000:])
        entries = client.xrange(key("cmd", SYMBOL, prefix=prefix))
        in_window = [
            f.get(b"t")
            for i, f in entries
            if meter_from * 1000 <= int(i.decode().partition("-")[0]) < meter_to * 1000
        ]
        window_s = meter_to - meter_from
        orders = sum(1 for t in in_window if t == b"new")
        cpu = meter.used()
        return {
            "processes": processes,
            "orders_per_s": round(orders / window_s, 1),
            "commands_per_s": round(len(in_window) / window_s, 1),
            "cpu_us_per_order": {k: round(v / max(1, orders) * 1e6, 1) for k, v in cpu.items()},
            "cores_busy": round(sum(cpu.values()) / window_s, 2),
        }
    finally:
        stop_processes(started)
        delete_prefix(client, prefix)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--agents", type=int, default=400)
    parser.add_argument("--rate", type=float, default=50.0, help="Wakes per second per agent.")
    parser.add_argument(
        "--processes",
        default=f"1,{os.cpu_count() or 1}",
        help="Comma-separated agent process counts to run, one after the other (default: 1 and "
        "one per core).",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "i/n": run as agent process i
    args = parser.parse_args()
    if args.worker:
        index, count = (int(x) for x in args.worker.split("/"))
        worker(index, count, args.agents, args.rate, args.seconds)
        return

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    folder = Path(tempfile.mkdtemp(prefix="fb-bench-floor-"))
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="flashbook_site.settings",
        DATABASE_URL=f"sqlite:///{folder / 'unused.sqlite3'}",  # nothing here reads a database
        REDIS_URL=redis_url,
        FLASHBOOK_ENV_FILE="",
        DEBUG="0",
        SECRET_KEY="bench-floor-" + uuid.uuid4().hex,
        LOG_LEVEL="WARNING",
        FLOOR_FOLDER=str(folder),
    )
    client = redis.Redis.from_url(redis_url)
    counts = sorted({int(x) for x in args.processes.split(",") if x.strip()})
    try:
        runs = []
        for processes in counts:
            result = run(processes, args, env, client)
            print(json.dumps(result), file=sys.stderr)
            runs.append(result)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    best = max(runs, key=lambda r: r["orders_per_s"])
    summary = {
        "bench": "agents_floor",
        "orders_per_s": best["orders_per_s"],
        "processes": best["processes"],
        "agents": args.agents,
        "wake_rate_hz": args.rate,
        "offered_per_s": round(args.agents * args.rate),
        "target_orders_per_s": TARGET_ORDERS_PER_S,
        "ratio": round(best["orders_per_s"] / TARGET_ORDERS_PER_S, 3),
        "cpus": os.cpu_count(),
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
