"""Engine-worker benchmark (issue 3): how fast the worker drains a journal, against how fast the
same Redis server accepts journal entries, and the XADD-to-event latency under a steady load.

    make bench-worker
    python bench/bench_worker.py [--runs 5] [--commands 1000000] [--batch-size 2000]

Each run uses a fresh key prefix (deleted afterwards) and measures:

1. **Redis XADD rate** (``redis_xadd_per_s``): the journal, 1,000,000 NEW/CANCEL entries in the
   gateway's field layout, appended with XADD pipelined 5,000 at a time over one connection into a
   fresh stream. The requests are precomputed RESP and the client only counts replies, so the
   server is the bottleneck (the Redis CPU share during the load is reported to show it). This is
   the rate at which producers can fill a journal: the physical limit of the design.
2. **Drain rate** (``worker_cmds_per_s``): ``manage.py run_engine --exit-when-drained`` on that
   journal (default settings: batches of 2,000, a snapshot every 100,000 commands). Timed from
   the worker's start of reading (its ``recovered`` log line) to its last event entry (the
   entry id's timestamp), so the interpreter's start-up is not counted; the time from spawn to
   exit is reported too. The first run also checks the result against an in-process replay.
3. **Latency** (``p50_ms``, ``p99_ms``): a fresh journal with the worker running; a producer
   sends 100 commands every 5 ms (20,000/s) for a few seconds, each batch one pipelined write; a
   reader blocks on the event stream with XREAD. A command's latency runs from just before its
   XADD is sent to the receipt of the first event entry whose ``jid`` covers it (entries carry
   the journal id of the last command they hold). The first 0.5 s are warm-up.

Figures are medians over the runs. The last line of output is the JSON summary, also written to
``bench/results/worker.json``.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import redis
from redis.connection import parse_url
from stack import delete_prefix, key

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "worker.json"
SYMBOL = "BENCH"
PIPELINE = 5_000
LATENCY_RATE = 20_000  # commands per second
LATENCY_TICK = 0.005  # seconds between producer writes
LATENCY_SECONDS = 4.0
WARMUP_SECONDS = 0.5
TARGET_RATIO = 0.75
PARALLEL = 4  # connections for the saturated-server XADD figure


# --- the workload -------------------------------------------------------------------------------


def journal_entries(n: int, seed: int) -> list[list[tuple[str, str]]]:
    """NEW limit orders around a drifting mid (some crossing, so there are trades) and CANCELs of
    orders that may still rest (some already filled: UNKNOWN_ORDER), in the gateway's layout."""
    rng = random.Random(seed)
    rand, randrange = rng.random, rng.randrange
    entries: list[list[tuple[str, str]]] = []
    live: list[tuple[str, str]] = []
    next_id, mid = 1, 100_000
    for _ in range(n):
        if live and rand() < 0.45:
            j = randrange(len(live))
            live[j], live[-1] = live[-1], live[j]
            oid, acct = live.pop()
            entries.append([("t", "cancel"), ("id", oid), ("acct", acct)])
            continue
        oid, acct = str(next_id), str(randrange(1, 1000))
        next_id += 1
        mid += (-1, 0, 0, 1)[randrange(4)]
        buy = rand() < 0.5
        offset = randrange(-3, 25)
        price = str(mid - offset if buy else mid + offset)
        side = "buy" if buy else "sell"
        entries.append(
            [
                ("t", "new"),
                ("id", oid),
                ("acct", acct),
                ("side", side),
                ("tif", "gtc"),
                ("px", price),
                ("qty", str(randrange(1, 100))),
            ]
        )
        live.append((oid, acct))
    return entries


def _bulk(value: str | bytes) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    return b"$%d\r\n%s\r\n" % (len(value), value)


def xadd_requests(stream: str, entries, chunk: int) -> list[bytes]:
    """The entries as XADD requests in RESP, `chunk` requests per payload."""
    head = b"$4\r\nXADD\r\n" + _bulk(stream) + b"$1\r\n*\r\n"
    requests = [
        b"*%d\r\n%s%s"
        % (3 + 2 * len(fields), head, b"".join(_bulk(k) + _bulk(v) for k, v in fields))
        for fields in entries
    ]
    return [b"".join(requests[i : i + chunk]) for i in range(0, len(requests), chunk)]


# --- a minimal RESP client for the timed parts --------------------------------------------------


class RawConnection:
    """A socket speaking RESP: send precomputed pipelines, count or parse the simple replies."""

    def __init__(self, url: str):
        params = parse_url(url)
        self.sock = socket.create_connection(
            (params.get("host", "127.0.0.1"), params.get("port", 6379))
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if params.get("password"):
            auth = (
                [params["username"], params["password"]]
                if params.get("username")
                else [params["password"]]
            )
            self.call("AUTH", *auth)
        if params.get("db"):
            self.call("SELECT", str(params["db"]))

    def call(self, *args: str) -> bytes:
        self.sock.sendall(b"*%d\r\n%s" % (len(args), b"".join(_bulk(a) for a in args)))
        reply = self.sock.recv(65536)
        if reply.startswith(b"-"):
            raise RuntimeError(reply.decode(errors="replace").strip())
        return reply

    def read_bulk_replies(self, count: int) -> bytes:
        """Reads `count` bulk-string replies (XADD ids): 2 lines each."""
        data = bytearray()
        while data.count(b"\r\n") < 2 * count:
            received = self.sock.recv(1 << 20)
            if not received:
                raise RuntimeError("redis closed the connection")
            data += received
        if data[:1] != b"$" or b"\n-" in data:
            raise RuntimeError(f"redis refused an XADD: {bytes(data[:200])!r}")
        return bytes(data)

    def close(self) -> None:
        self.sock.close()


def redis_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


# --- the worker ---------------------------------------------------------------------------------


def start_worker(url: str, prefix: str, args: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, REDIS_URL=url, FLASHBOOK_REDIS_PREFIX=prefix)
    command = [sys.executable, "manage.py", "run_engine", "--symbols", SYMBOL, *args]
    with open(log, "wb") as err:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)


def log_records(log: Path) -> list[dict]:
    records = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def stream_id_ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-")[0])


def id_key(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, seq = text.split("-")
    return int(ms), int(seq)


# --- the measurements ---------------------------------------------------------------------------


def measure_load(url: str, r: redis.Redis, payloads: list[bytes], n: int) -> dict:
    conn = RawConnection(url)
    cpu0, process0 = redis_cpu(r), time.process_time()
    start = time.perf_counter()
    sent = 0
    for payload in payloads:
        count = min(PIPELINE, n - sent)
        conn.sock.sendall(payload)
        conn.read_bulk_replies(count)
        sent += count
    elapsed = time.perf_counter() - start
    redis_share = (redis_cpu(r) - cpu0) / elapsed
    client_share = (time.process_time() - process0) / elapsed
    conn.close()
    return {
        "xadd_per_s": n / elapsed,
        "seconds": elapsed,
        "redis_cpu_share": redis_share,
        "client_cpu_share": client_share,
    }


def measure_parallel_load(url: str, r: redis.Redis, payloads: list[bytes], connections: int):
    """The same pipelined XADDs from several connections at once into one fresh stream, so that
    Redis never waits for a client: the server's own ceiling, for context."""
    conns = [RawConnection(url) for _ in range(connections)]
    barrier = threading.Barrier(connections + 1)
    counts = [p.count(b"\r\n$4\r\nXADD\r\n") for p in payloads]

    def produce(index: int):
        conn = conns[index]
        barrier.wait()
        for payload, count in list(zip(payloads, counts, strict=True))[index::connections]:
            conn.sock.sendall(payload)
            conn.read_bulk_replies(count)

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for conn in conns:
        conn.close()
    return sum(counts) / elapsed


def measure_drain(url: str, r: redis.Redis, prefix: str, n: int, worker_args, log: Path) -> dict:
    spawned = time.time()
    worker = start_worker(url, prefix, ["--exit-when-drained", *worker_args], log)
    out, _ = worker.communicate(timeout=600)
    exited = time.time()
    if worker.returncode != 0:
        raise RuntimeError(f"worker failed ({worker.returncode}):\n{log.read_text()[-3000:]}")
    [report] = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    if report["commands"] != n:
        raise RuntimeError(f"worker applied {report['commands']} commands, want {n}")
    [recovered] = [rec for rec in log_records(log) if rec["msg"] == "recovered"]
    last_entry = r.xrevrange(key("evt", SYMBOL, prefix=prefix), count=1)[0][0]
    seconds = (stream_id_ms(last_entry) - recovered["ts"] * 1000) / 1000
    return {
        "cmds_per_s": n / seconds,
        "seconds": seconds,
        "wall_seconds_spawn_to_exit": exited - spawned,
        "events_written": report["events_written"],
        "event_entries": r.xlen(key("evt", SYMBOL, prefix=prefix)),
        "state_hash": report["state_hash"],
    }


def measure_latency(url: str, r: redis.Redis, prefix: str, entries, worker_args, log: Path):
    per_tick = int(LATENCY_RATE * LATENCY_TICK)
    ticks = int(LATENCY_SECONDS / LATENCY_TICK)
    payloads = xadd_requests(
        key("cmd", SYMBOL, prefix=prefix), entries[: per_tick * ticks], per_tick
    )
    worker = start_worker(url, prefix, list(worker_args), log)
    status = key("status", SYMBOL, prefix=prefix)
    deadline = time.monotonic() + 30
    while r.hget(status, "pid") != str(worker.pid).encode():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)

    received: list[tuple[tuple[int, int], float]] = []  # (jid, time of receipt)
    done = threading.Event()

    def read_events():
        reader = redis.Redis.from_url(url)
        last = "0-0"
        while not done.is_set():
            reply = reader.xread({key("evt", SYMBOL, prefix=prefix): last}, count=1000, block=200)
            now = time.perf_counter()
            for _, items in reply:
                for entry_id, fields in items:
                    received.append((id_key(fields[b"jid"]), now))
                    last = entry_id
        reader.close()

    thread = threading.Thread(target=read_events, daemon=True)
    thread.start()
    conn = RawConnection(url)
    sent: list[tuple[float, list[tuple[int, int]]]] = []  # (send time, journal ids)
    start = time.perf_counter()
    for tick, payload in enumerate(payloads):
        delay = start + tick * LATENCY_TICK - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t_send = time.perf_counter()
        conn.sock.sendall(payload)
        lines = conn.read_bulk_replies(per_tick).split(b"\r\n")
        sent.append((t_send, [id_key(entry_id) for entry_id in lines[1::2]]))
    produced_seconds = time.perf_counter() - start
    last_id = sent[-1][1][-1]
    deadline = time.monotonic() + 30
    while not received or received[-1][0] < last_id:
        if time.monotonic() > deadline:
            raise RuntimeError("the events of the last commands never arrived")
        time.sleep(0.01)
    done.set()
    thread.join()
    conn.close()
    worker.send_signal(signal.SIGTERM)
    if worker.wait(60) != 0:
        raise RuntimeError(f"worker failed:\n{log.read_text()[-3000:]}")

    jids = [jid for jid, _ in received]
    latencies = []
    for t_send, ids in sent:
        if t_send - start < WARMUP_SECONDS:
            continue
        for journal_id in ids:
            index = bisect.bisect_left(jids, journal_id)
            latencies.append((received[index][1] - t_send) * 1000)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    return {
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": latencies[-1],
        "commands": len(latencies),
        "achieved_rate": per_tick * len(payloads) / produced_seconds,
    }


def check_against_replay(entries, state_hash: int, events_written: int) -> None:
    from flashbook_engine import OrderBook

    book = OrderBook(SYMBOL)
    for fields in entries:
        book.apply_entry(fields)
    if (book.state_hash(), book.seq) != (state_hash, events_written):
        raise RuntimeError("the worker's final state differs from an in-process replay")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=None, help="the worker's --batch-size")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the JSON")
    options = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    r = redis.Redis.from_url(url)
    r.ping()
    worker_args = [] if options.batch_size is None else ["--batch-size", str(options.batch_size)]
    n = options.commands

    print(
        f"bench-worker: {n:,} NEW/CANCEL commands, {options.runs} runs, Redis at {url}", flush=True
    )
    t0 = time.perf_counter()
    entries = journal_entries(n, seed=1)
    latency_entries = journal_entries(int(LATENCY_RATE * LATENCY_SECONDS), seed=2)
    entry_bytes = sum(len(f"{k}{v}") for fields in entries[:10_000] for k, v in fields) / 10_000
    print(f"  workload built in {time.perf_counter() - t0:.1f}s", flush=True)

    loads, drains, latencies = [], [], []
    log = ROOT / "var" / "bench_worker.log"
    log.parent.mkdir(exist_ok=True)
    for run in range(1, options.runs + 1):
        prefix = f"bench-{uuid.uuid4().hex[:10]}"
        try:
            payloads = xadd_requests(key("cmd", SYMBOL, prefix=prefix), entries, PIPELINE)
            load = measure_load(url, r, payloads, n)
            del payloads
            drain = measure_drain(url, r, prefix, n, worker_args, log)
            if run == 1:
                check_against_replay(entries, drain["state_hash"], drain["events_written"])
            delete_prefix(r, prefix)
            payloads = xadd_requests(key("probe", SYMBOL, prefix=prefix), entries, PIPELINE)
            load["xadd_per_s_parallel"] = measure_parallel_load(url, r, payloads, PARALLEL)
            del payloads
        finally:
            delete_prefix(r, prefix)
        loads.append(load)
        drains.append(drain)
        line = (
            f"  run {run}: XADD {load['xadd_per_s']:,.0f}/s"
            f" (redis CPU {load['redis_cpu_share']:.0%}, client CPU {load['client_cpu_share']:.0%};"
            f" {PARALLEL} connections: {load['xadd_per_s_parallel']:,.0f}/s);"
            f" drain {drain['cmds_per_s']:,.0f}/s ({drain['seconds']:.2f}s,"
            f" {drain['events_written']:,} events in {drain['event_entries']} entries;"
            f" spawn to exit {drain['wall_seconds_spawn_to_exit']:.2f}s)"
        )
        if not options.no_latency:
            prefix = f"bench-{uuid.uuid4().hex[:10]}"
            try:
                latency = measure_latency(url, r, prefix, latency_entries, worker_args, log)
            finally:
                delete_prefix(r, prefix)
            latencies.append(latency)
            line += (
                f"; latency at {latency['achieved_rate']:,.0f}/s p50 {latency['p50_ms']:.2f} ms"
                f" p99 {latency['p99_ms']:.2f} ms max {latency['max_ms']:.1f} ms"
            )
        print(line, flush=True)

    def median(rows, field):
        return statistics.median(row[field] for row in rows)

    worker_rate = median(drains, "cmds_per_s")
    xadd_rate = median(loads, "xadd_per_s")
    result = {
        "bench": "worker",
        "worker_cmds_per_s": round(worker_rate),
        "redis_xadd_per_s": round(xadd_rate),
        "ratio": round(worker_rate / xadd_rate, 3),
        "p50_ms": round(median(latencies, "p50_ms"), 3) if latencies else None,
        "p99_ms": round(median(latencies, "p99_ms"), 3) if latencies else None,
        "target_ratio": TARGET_RATIO,
        "commands": n,
        "runs": options.runs,
        "pipeline": PIPELINE,
        "entry_field_bytes": round(entry_bytes, 1),
        "worker_batch_size": options.batch_size or 2000,
        "events_per_command": round(median(drains, "events_written") / n, 3),
        "worker_cmds_per_s_runs": [round(d["cmds_per_s"]) for d in drains],
        "redis_xadd_per_s_runs": [round(x["xadd_per_s"]) for x in loads],
        "redis_cpu_share_during_xadd": round(median(loads, "redis_cpu_share"), 2),
        "redis_xadd_per_s_parallel": round(median(loads, "xadd_per_s_parallel")),
        "parallel_connections": PARALLEL,
        "ratio_vs_parallel": round(worker_rate / median(loads, "xadd_per_s_parallel"), 3),
        "spawn_to_exit_s": round(median(drains, "wall_seconds_spawn_to_exit"), 3),
        "latency_rate_per_s": LATENCY_RATE,
        "p999_ms": round(median(latencies, "p999_ms"), 3) if latencies else None,
        "max_ms": round(max(x["max_ms"] for x in latencies), 3) if latencies else None,
        "redis_version": r.info("server")["redis_version"],
        "cpus": os.cpu_count(),
    }
    options.results.parent.mkdir(parents=True, exist_ok=True)
    options.results.write_text(json.dumps(result) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
