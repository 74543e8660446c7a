"""WebSocket API benchmark (issue 18): order entry over `/ws/v1/` through the whole stack as it
runs in production, beside `make bench-api` (the same stack, the same orders, over REST).

    make bench-ws
    python bench/bench_ws.py [--seconds 20] [--clients 32] [--workers 2] [--in-flight 1]

What runs is `bench_api.py`'s stack (gunicorn with 2 uvicorn workers, the engine worker, the
recorder, a fresh PostgreSQL database — SQLite with ``--database sqlite`` or when none answers —
and a fresh Redis key prefix; all torn down afterwards).

The load: 32 programs, each one WebSocket connection authenticated by its bearer token at the
handshake, sending `order.place` requests — GTC limit orders of 1 to 5 lots, buy or sell at random,
within 5 ticks of 100.00 so that about half trade, `wait` true (each answered with the engine's
outcome) — one after the other (``--in-flight`` N keeps N requests of each program in flight, as a
program that pipelines does). Latency is from just before a request is sent to its answer;
``errors`` counts answers other than 2xx and broken connections. The last line of output is the
JSON summary, also written to ``bench/results/ws.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench_api import SYMBOL, percentile, prepare, server_command, spawn, stop, wait_ready
from stack import (
    CpuMeter,
    caught_up_after,
    children,
    delete_prefix,
    free_port,
    key,
    postgres_answers,
    postgres_database,
    postgres_pids,
    postgres_url,
)
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "ws.json"


def _order(rng: random.Random, request_id: int) -> str:
    price = 10_000 + rng.randint(-5, 5)
    side = "buy" if rng.random() < 0.5 else "sell"
    return (
        f'{{"id":{request_id},"method":"order.place","params":{{"symbol":"{SYMBOL}",'
        f'"side":"{side}","type":"limit","price":"{price // 100}.{price % 100:02d}",'
        f'"quantity":"{rng.randint(1, 5)}","wait":true}}}}'
    )


async def program(port: int, token: str, deadline: float, in_flight: int, seed: int, out: dict):
    """One program: a connection, `in_flight` requests outstanding until the deadline."""
    rng = random.Random(seed)
    url = f"ws://127.0.0.1:{port}/ws/v1/"
    headers = {"Authorization": f"Bearer {token}"}
    while time.perf_counter() < deadline:
        try:
            async with connect(url, additional_headers=headers, compression=None) as socket:
                json.loads(await socket.recv())  # hello
                sent: dict[int, float] = {}
                next_id = 0
                for _ in range(in_flight):
                    next_id += 1
                    sent[next_id] = time.perf_counter()
                    await socket.send(_order(rng, next_id))
                while sent:
                    answer = json.loads(await socket.recv())
                    request_id = answer.get("id")
                    if request_id not in sent:
                        continue  # nothing is subscribed: no pushed frames are expected
                    out["latencies"].append((time.perf_counter() - sent.pop(request_id)) * 1000)
                    status = answer["status"]
                    out["statuses"].append(status)
                    if status >= 300 and len(out["samples"]) < 5:
                        out["samples"].append(answer.get("error"))
                    if time.perf_counter() < deadline:
                        next_id += 1
                        sent[next_id] = time.perf_counter()
                        await socket.send(_order(rng, next_id))
                return
        except OSError:
            out["statuses"].append(0)  # a broken connection: an error, then a new one
            await asyncio.sleep(0.05)


async def load(port: int, tokens: list[str], seconds: float, in_flight: int) -> dict:
    out = {"latencies": [], "statuses": [], "samples": []}
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(program(port, t, deadline, in_flight, i, out) for i, t in enumerate(tokens))
    )
    out["elapsed"] = time.perf_counter() - start
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=1, help="requests each program keeps")
    parser.add_argument("--database", choices=("auto", "postgresql", "sqlite"), default="auto")
    options = parser.parse_args()

    import redis

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"fbbench-ws-{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix="fbbench-ws-"))
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
        "FLASHBOOK_ENV_FILE": str(tmp / "none.env"),  # not the developer's .env
        "DEBUG": "0",
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "FLASHBOOK_REDIS_PREFIX": prefix,
        # Counted as in production, set above what 32 programs at full speed reach.
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
        procs["uvicorn"] = spawn(server_command("asgi", port, options.workers), env, tmp / "w.log")
        wait_ready(port, tokens[0])
        time.sleep(1.0)  # let every uvicorn worker finish starting
        for name, proc in procs.items():
            if proc.poll() is not None:
                logs = "".join(p.read_text()[-1500:] for p in tmp.glob("*.log"))
                raise RuntimeError(f"{name} exited: {logs}")

        asyncio.run(load(port, tokens, 1.0, options.in_flight))  # warm up; not measured
        worker_pids = children(procs["uvicorn"].pid)
        redis_pid = int(rds.info("server")["process_id"])
        meter = CpuMeter(
            {
                "uvicorn_workers": lambda: worker_pids,
                "engine": lambda: [procs["engine"].pid],
                "recorder": lambda: [procs["recorder"].pid],
                **({"postgresql": postgres_pids} if use_postgres else {}),
                "redis": lambda: [redis_pid],
            }
        )
        client_before = time.process_time()
        with meter:
            out = asyncio.run(load(port, tokens, options.seconds, options.in_flight))
        elapsed = out["elapsed"]
        cpu = meter.used()
        cpu["client"] = time.process_time() - client_before
        statuses = out["statuses"]
        ok = sum(1 for s in statuses if 200 <= s < 300)
        codes: dict[int, int] = {}
        for s in statuses:
            codes[s] = codes.get(s, 0) + 1
        lag_s = caught_up_after(rds, key("evt", SYMBOL, prefix=prefix))
        summary = {
            "bench": "ws",
            "orders_per_s": round(ok / elapsed),
            "p50_ms": round(percentile(out["latencies"], 0.50), 2),
            "p99_ms": round(percentile(out["latencies"], 0.99), 2),
            "errors": len(statuses) - ok,
            "web_cpu_us_per_order": round(cpu["uvicorn_workers"] / max(ok, 1) * 1e6, 1),
        }
        details = {
            "seconds": round(elapsed, 1),
            "clients": options.clients,
            "in_flight": options.in_flight,
            "uvicorn_workers": options.workers,
            "database": "postgresql" if drop_db else "sqlite",
            "cpus": os.cpu_count(),
            "statuses": codes,
            "error_samples": out["samples"],
            "mean_ms": round(statistics.fmean(out["latencies"]), 2) if out["latencies"] else 0,
            "latency_ms": {
                f"p{q:g}": round(percentile(out["latencies"], q / 100), 2)
                for q in (50, 90, 95, 99, 99.9, 100)
            },
            "cpu_share_of_one_core": {k: round(v / elapsed, 2) for k, v in cpu.items()},
            "cpu_us_per_order": {k: round(v / max(ok, 1) * 1e6, 1) for k, v in cpu.items()},
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
