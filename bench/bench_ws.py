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
import random
import sys
import time
from pathlib import Path

from bench_api import SYMBOL, database_options, run_bench
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
    database_options(parser)
    options = parser.parse_args()
    return run_bench(
        "ws",
        RESULTS,
        options,
        lambda port, tokens, seconds: asyncio.run(load(port, tokens, seconds, options.in_flight)),
        details={"in_flight": options.in_flight},
    )


if __name__ == "__main__":
    sys.exit(main())
