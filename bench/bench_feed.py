"""Live-feed benchmark (issue 5): orders into the engine at 10,000/s while a WebSocket client
subscribed like a browser measures how long the engine's events take to reach it.

    make bench-feed
    python bench/bench_feed.py [--runs 3] [--seconds 8] [--rate 10000]

The stack: the Procfile's web (the ASGI app with the WebSocket consumers), engine and bridge roles,
on a fresh SQLite file and a fresh Redis key prefix (deleted afterwards). Orders are written
straight to the journal (pipelined XADDs every 10 ms, as `bench_worker.py` does) so what is
measured is the feed, not the REST API: NEW limit orders around a drifting mid, some crossing
(trades), and cancels.

The client connects to `/ws/market/BENCH/` (with an allowed Origin, as a browser does), takes the
snapshot and records every frame's arrival time. Afterwards the event stream says when the engine
wrote each event (the stream entry's id is Redis's clock at the XADD, in ms):

* a level change is delivered by the first book frame whose `seq` reaches it (book frames are
  conflated to ~10/s, so this includes up to 100 ms of waiting by design);
* a trade is delivered by the trades frame that carries it.

`p50_ms` / `p99_ms` are over all level and trade events of the measured window (the first second
is warm-up); the trades-only and book-only figures are reported too, and so are frames per second,
book frames per second, and trades lost (trades in the event stream that no frame carried: must
be 0). Figures are medians over the runs; the last line is the JSON summary, also written to
`bench/results/feed.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import statistics
import threading
import time
import uuid
from pathlib import Path

import redis
from stack import key, start_stack

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "feed.json"
SYMBOL = "BENCH"
TICK_S = 0.01
WARMUP_S = 1.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Orders:
    """NEW limit orders around a drifting mid (a quarter crossing) and cancels, gateway layout."""

    def __init__(self, seed: int, first_id: int):
        self.rng = random.Random(seed)
        self.next_id = first_id
        self.live: list[tuple[int, int]] = []
        self.mid = 10_000

    def entry(self) -> dict:
        rng = self.rng
        if self.live and rng.random() < 0.4:
            oid, acct = self.live.pop(rng.randrange(len(self.live)))
            return {"t": "cancel", "id": oid, "acct": acct}
        oid, acct = self.next_id, rng.randrange(1, 500)
        self.next_id += 1
        self.mid += rng.choice((-1, 0, 0, 1))
        buy = rng.random() < 0.5
        offset = rng.randrange(-3, 15)
        price = self.mid - offset if buy else self.mid + offset
        self.live.append((oid, acct))
        if len(self.live) > 5000:
            self.live.pop(0)
        return {
            "t": "new",
            "id": oid,
            "acct": acct,
            "side": "buy" if buy else "sell",
            "px": price,
            "qty": rng.randrange(1, 50),
        }


def produce(r: redis.Redis, prefix: str, orders: Orders, rate: int, seconds: float) -> int:
    stream = key("cmd", SYMBOL, prefix=prefix)
    per_tick = max(1, int(rate * TICK_S))
    sent = 0
    start = time.perf_counter()
    tick = 0
    while True:
        due = start + tick * TICK_S
        now = time.perf_counter()
        if now - start >= seconds:
            return sent
        if due > now:
            time.sleep(due - now)
        pipe = r.pipeline(transaction=False)
        for _ in range(per_tick):
            pipe.xadd(stream, orders.entry())
        pipe.execute()
        sent += per_tick
        tick += 1


async def listen(
    url: str, origin: str, frames: list, stop: threading.Event, ready: threading.Event
):
    import websockets

    async with websockets.connect(url, origin=origin, max_size=None) as ws:
        while not stop.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            frames.append((time.time() * 1000, json.loads(text)))
            if frames[-1][1]["type"] == "snapshot":
                ready.set()


def measure(r, prefix: str, url: str, orders: Orders, rate: int, seconds: float) -> dict:
    frames: list[tuple[float, dict]] = []
    stop, ready = threading.Event(), threading.Event()
    listener = threading.Thread(
        target=lambda: asyncio.run(
            listen(
                f"ws{url.removeprefix('http')}/ws/market/{SYMBOL}/",
                url,
                frames,
                stop,
                ready,
            )
        ),
        daemon=True,
    )
    listener.start()
    assert ready.wait(30), "no snapshot from the WebSocket"
    evt = key("evt", SYMBOL, prefix=prefix)
    last_entry = r.xrevrange(evt, count=1)
    start_id = last_entry[0][0].decode() if last_entry else "0-0"
    started_ms = time.time() * 1000
    sent = produce(r, prefix, orders, rate, seconds)
    produced_s = time.time() * 1000 - started_ms
    # Wait (up to 30 s) until the client has a frame for the engine's last event, so a trade
    # counted as lost is lost, not late.
    newest = r.xrevrange(evt, count=1)
    last_seq = int(newest[0][1][b"last"]) if newest else 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(f.get("seq", 0) >= last_seq for _, f in frames[-20:]):
            break
        time.sleep(0.2)
    time.sleep(0.3)
    stop.set()
    listener.join(5)

    snapshot_seq = next(f["seq"] for _, f in frames if f["type"] == "snapshot")
    book_frames = [(t, f["seq"]) for t, f in frames if f["type"] == "book"]
    book_seqs = [seq for _, seq in book_frames]
    trade_arrival = {}
    for t, f in frames:
        if f["type"] == "trades":
            for trade in f["trades"]:
                trade_arrival.setdefault(trade["seq"], t)

    level_delays, trade_delays = [], []
    trades_in_stream = trades_lost = 0
    window_from = started_ms + WARMUP_S * 1000
    for entry_id, fields in r.xrange(evt, min=f"({start_id}"):
        written_ms = int(entry_id.split(b"-")[0])
        first = int(fields[b"first"])
        if first <= snapshot_seq:
            continue
        measured = window_from <= written_ms <= started_ms + produced_s
        for line in fields[b"e"].split(b"\n"):
            parts = line.split()
            if len(parts) < 2:
                continue
            seq, kind = int(parts[0]), parts[1]
            if kind == b"T":
                trades_in_stream += 1
                arrived = trade_arrival.get(seq)
                if arrived is None:
                    trades_lost += 1
                elif measured:
                    trade_delays.append(arrived - written_ms)
            elif kind == b"L" and measured:
                index = bisect.bisect_left(book_seqs, seq)
                if index < len(book_frames):
                    level_delays.append(book_frames[index][0] - written_ms)
    duration_s = produced_s / 1000
    in_window = [t for t, _ in book_frames if started_ms <= t <= started_ms + produced_s]
    per_second: dict[int, int] = {}
    for t in in_window:
        per_second[int((t - started_ms) // 1000)] = (
            per_second.get(int((t - started_ms) // 1000), 0) + 1
        )
    return {
        "orders_per_s": round(sent / duration_s),
        "frames_per_s": round(
            sum(1 for t, _ in frames if started_ms <= t <= started_ms + produced_s) / duration_s, 1
        ),
        "book_frames_per_s": round(len(in_window) / duration_s, 1),
        "book_frames_max_in_a_second": max(per_second.values(), default=0),
        "p50_ms": percentile(level_delays + trade_delays, 0.50),
        "p99_ms": percentile(level_delays + trade_delays, 0.99),
        "trades_p50_ms": percentile(trade_delays, 0.50),
        "trades_p99_ms": percentile(trade_delays, 0.99),
        "book_p50_ms": percentile(level_delays, 0.50),
        "book_p99_ms": percentile(level_delays, 0.99),
        "trades": trades_in_stream,
        "trades_lost": trades_lost,
        "events_measured": len(level_delays) + len(trade_delays),
    }


def setup_commands() -> list[list[str]]:
    """The instrument the benchmark trades: created before the stack starts."""
    create = (
        "from decimal import Decimal\n"
        "from exchange.services import instrument_ensure\n"
        f"instrument_ensure(symbol={SYMBOL!r}, name='Benchmark', tick_size=Decimal('0.01'), "
        "lot_size=Decimal('1'), min_order_qty=Decimal('1'), max_order_qty=Decimal('100000'), "
        "reference_price=Decimal('100'))\n"
    )
    return [["shell", "-c", create]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=10_000)
    args = parser.parse_args()

    import tempfile

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    r = redis.Redis.from_url(redis_url)
    prefix = f"benchfeed-{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="bench-feed-"))
    stack = start_stack(
        ["web", "engine", "bridge"],
        work=work,
        redis_url=redis_url,
        prefix=prefix,
        env={"LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING")},
        setup=setup_commands(),
        ready_symbols=[SYMBOL],
    )
    runs = []
    try:
        orders = Orders(seed=5, first_id=1)
        for index in range(args.runs):
            result = measure(r, prefix, stack.url, orders, args.rate, args.seconds)
            runs.append(result)
            print(f"run {index + 1}: " + json.dumps(result), flush=True)
    finally:
        stack.stop()

    def median(name):
        return round(statistics.median(run[name] for run in runs), 1)

    summary = {
        "bench": "feed",
        "p50_ms": median("p50_ms"),
        "p99_ms": median("p99_ms"),
        "frames_per_s": median("frames_per_s"),
        "book_frames_per_s": median("book_frames_per_s"),
        "book_frames_max_in_a_second": max(run["book_frames_max_in_a_second"] for run in runs),
        "trades_p50_ms": median("trades_p50_ms"),
        "trades_p99_ms": median("trades_p99_ms"),
        "book_p50_ms": median("book_p50_ms"),
        "book_p99_ms": median("book_p99_ms"),
        "orders_per_s": median("orders_per_s"),
        "trades_lost": sum(run["trades_lost"] for run in runs),
        "trades": sum(run["trades"] for run in runs),
        "runs": args.runs,
        "seconds_per_run": args.seconds,
        "target_p99_ms": 150,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
