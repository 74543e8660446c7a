"""REST API benchmark (issue 4): order entry through the whole stack as it runs in production.

    make bench-api
    python bench/bench_api.py [--seconds 20] [--clients 32] [--workers 2] [--no-wait]

What runs (all torn down afterwards):

* a fresh database on PostgreSQL, as in production: ``fbbench_<random>``, created on the server
  at ``TEST_POSTGRES_URL`` (default ``postgres://postgres@127.0.0.1:5432/postgres``) and dropped
  after; ``--database sqlite`` (or no PostgreSQL answering) uses an SQLite file instead;
  migrated, with one instrument ``BENCH`` and 32 users, each with an account and an API token
  (made through ``exchange.services``);
* a fresh Redis key prefix (deleted afterwards) on ``REDIS_URL``;
* ``gunicorn --config deploy/gunicorn.conf.py --workers 2`` (production's server: uvicorn workers
  under gunicorn, each with a listening socket of its own; the worker count for 2 cores) with
  DEBUG off, a SECRET_KEY and ALLOWED_HOSTS, on a free port, without access logs;
* the engine worker (``manage.py run_engine --symbols BENCH``) and the recorder
  (``manage.py run_recorder --symbols BENCH``).

The load: one asyncio client per user (32 by default), each with its own keep-alive connection
and bearer token, sending ``POST /api/v1/orders/`` one after the other for 20 s: GTC limit orders
of 1 to 5 lots, buy or sell at random, priced within 5 ticks of 100.00 either side so about half of
them trade. ``wait`` is true by default (the real path: the API answers with the engine's
immediate outcome); ``--no-wait`` measures the 202 path. The client is a minimal HTTP/1.1 client
(an asyncio protocol) so that it costs little CPU next to the server on the same machine.

Latency is from just before a request is written to the end of its response body. ``errors``
counts answers other than 2xx (and broken connections). The CPU time each part used during the
load (uvicorn workers, engine, recorder, Redis, this client) is reported to show where the time
goes. The last line of output is the JSON summary, also written to ``bench/results/api.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "api.json"
SYMBOL = "BENCH"
TARGET_ORDERS_PER_S = 1_500
TARGET_P99_MS = 50.0


def server_command(interface: str, port: int, workers: int) -> list[str]:
    """The web server's command line, quiet (warnings only, no access log)."""
    if interface == "asgi":
        # Production's server: gunicorn with uvicorn workers, a listening socket each.
        return [
            *(sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py"),
            *("--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning"),
        ]
    # For comparison only: the same Django project as a WSGI app, run in uvicorn's thread pool.
    return [
        *(sys.executable, "-m", "uvicorn", "--interface", "wsgi"),
        *("--factory", "django.core.wsgi:get_wsgi_application"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        *("--no-access-log", "--log-level", "warning", "--lifespan", "off"),
    ]


# --- the stack ----------------------------------------------------------------------------------


def prepare(env: dict[str, str], clients: int) -> list[str]:
    """Migrates the fresh database and creates the instrument and the users; their tokens."""
    code = f"""
import json
from decimal import Decimal
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from exchange import services
services.instrument_ensure(symbol={SYMBOL!r}, name="Benchmark", tick_size=Decimal("0.01"),
    lot_size=Decimal("1"), min_order_qty=Decimal("1"), max_order_qty=Decimal("1000"),
    reference_price=Decimal("100"))
tokens = []
for i in range({clients}):
    user = get_user_model().objects.create_user(username=f"bench{{i}}", password=None)
    account = services.account_for_user(user)
    account.cash = Decimal("1000000000")
    account.save()
    tokens.append(services.api_token_create(user=user, name="bench")[1])
print(json.dumps(tokens))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- the load -----------------------------------------------------------------------------------


class _OrderClient(asyncio.Protocol):
    """One keep-alive connection placing orders one after the other until the deadline. A
    protocol rather than streams: the load generator shares the server's cores, so it should cost
    as little as it can (a fifth less CPU per order than the asyncio-streams client it replaced)."""

    def __init__(self, head: bytes, rng: random.Random, wait: bool, deadline: float, out, done):
        self.head, self.rng, self.deadline, self.out, self.done = head, rng, deadline, out, done
        self.wait = b"true" if wait else b"false"
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.start = 0.0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        if time.perf_counter() >= self.deadline:
            self.transport.close()
            return
        rng = self.rng
        price = 10_000 + rng.randint(-5, 5)
        body = b'{"symbol": "%s", "side": "%s", "type": "limit", "price": "%d.%02d", ' % (
            SYMBOL.encode(),
            b"buy" if rng.random() < 0.5 else b"sell",
            price // 100,
            price % 100,
        ) + b'"quantity": "%d", "wait": %s}' % (rng.randint(1, 5), self.wait)
        self.buffer = b""
        self.start = time.perf_counter()
        self.transport.write(b"%sContent-Length: %d\r\n\r\n%s" % (self.head, len(body), body))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"\r\ncontent-length:")
        length = int(head[at + 17 : head.find(b"\r", at + 17)]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        self.out["latencies"].append((time.perf_counter() - self.start) * 1000)
        try:
            status = int(self.buffer[9:12])
        except ValueError:
            status = 0
        self.out["statuses"].append(status)
        if status >= 300 and len(self.out["samples"]) < 5:
            self.out["samples"].append(self.buffer[: self.buffer.find(b"\r\n")].decode("latin-1"))
        self._send()

    def connection_lost(self, exc) -> None:
        if time.perf_counter() < self.deadline:
            self.out["statuses"].append(0)  # a broken connection: an error, then a new one
        if not self.done.done():
            self.done.set_result(None)


async def client(port: int, token: str, deadline: float, wait: bool, seed: int, out: dict):
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    head = (
        "POST /api/v1/orders/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    ).encode()
    while time.perf_counter() < deadline:
        done = loop.create_future()
        try:
            factory = functools.partial(_OrderClient, head, rng, wait, deadline, out, done)
            await loop.create_connection(factory, "127.0.0.1", port)
        except OSError:
            out["statuses"].append(0)
            await asyncio.sleep(0.05)
            continue
        await done


async def load(port: int, tokens: list[str], seconds: float, wait: bool) -> dict:
    out = {"latencies": [], "statuses": [], "samples": []}
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(client(port, t, deadline, wait, i, out) for i, t in enumerate(tokens)))
    out["elapsed"] = time.perf_counter() - start
    return out


def wait_ready(port: int, token: str, timeout: float = 30.0) -> None:
    import http.client

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/account/", headers={"Authorization": f"Bearer {token}"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API server did not come up")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        choices=("auto", "postgresql", "sqlite"),
        default="auto",
        help="auto: PostgreSQL when one answers at TEST_POSTGRES_URL, else SQLite",
    )


class BenchStack:
    """A benchmark's stack while it runs: its environment, work folder, key prefix, Redis client
    and processes (`spawn` adds one; all are stopped on the way out)."""

    def __init__(self, env: dict[str, str], tmp: Path, prefix: str, rds, use_postgres: bool):
        self.env, self.tmp, self.prefix, self.rds = env, tmp, prefix, rds
        self.use_postgres = use_postgres
        self.procs: dict[str, subprocess.Popen] = {}

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        self.procs[name] = spawn(args, self.env, self.tmp / f"{name}.log")
        return self.procs[name]

    def check_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                logs = "".join(p.read_text()[-1500:] for p in self.tmp.glob("*.log"))
                raise RuntimeError(f"{name} exited: {logs}")

    def redis_pid(self) -> int:
        return int(self.rds.info("server")["process_id"])

    def recorder_lag_s(self) -> float | None:
        """How far the recorder is behind when the load stops."""
        return caught_up_after(self.rds, key("evt", SYMBOL, prefix=self.prefix))


@contextmanager
def bench_stack(bench: str, options, env_extra: dict[str, str] | None = None):
    """A fresh database (PostgreSQL unless `options.database` says otherwise or none answers),
    a fresh Redis key prefix and work folder, and the environment of production's settings for
    them; everything removed afterwards (the logs kept with BENCH_KEEP_LOGS)."""
    import redis

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"fbbench-{bench}-{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix=f"fbbench-{bench}-"))
    drop_db = None
    server = postgres_url()
    use_postgres = options.database == "postgresql" or (
        options.database == "auto" and postgres_answers(server)
    )
    if use_postgres:
        database_url, drop_db = postgres_database(server)
    else:
        database_url = f"sqlite:///{tmp / 'db.sqlite3'}"
    if os.environ.get("BENCH_CONN_MAX_AGE"):
        database_url += f"?conn_max_age={os.environ['BENCH_CONN_MAX_AGE']}"
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
        # Counted as in production, set above what 32 clients at full speed reach (6,000 a
        # minute each, the default, is 3,200 orders/s over 32).
        "FLASHBOOK_ORDER_RATE": "1000000/min",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **(env_extra or {}),
    }
    rds = redis.Redis.from_url(redis_url)
    stack = BenchStack(env, tmp, prefix, rds, use_postgres)
    try:
        yield stack
    finally:
        for proc in reversed(list(stack.procs.values())):
            stop(proc)
        delete_prefix(rds, prefix)
        rds.close()
        if drop_db is not None:
            drop_db()
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(
    results: Path,
    summary: dict,
    stack: BenchStack,
    *,
    latencies: list[float],
    elapsed: float,
    cpu: dict[str, float],
    orders: int,
    details: dict,
) -> None:
    """Prints the details, then the summary as the last line, and writes both to `results`.
    `summary` gets the latency figures; `details` the latency spread and each part's CPU, per
    `orders` (the answered orders)."""
    summary = {
        "bench": summary.pop("bench"),
        "orders_per_s": summary.pop("orders_per_s"),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        **summary,
    }
    details = {
        "seconds": round(elapsed, 1),
        **details,
        "database": "postgresql" if stack.use_postgres else "sqlite",
        "cpus": os.cpu_count(),
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else 0,
        "latency_ms": {
            f"p{q:g}": round(percentile(latencies, q / 100), 2) for q in (50, 90, 95, 99, 99.9, 100)
        },
        "cpu_share_of_one_core": {k: round(v / elapsed, 2) for k, v in cpu.items()},
        "cpu_us_per_order": {k: round(v / max(orders, 1) * 1e6, 1) for k, v in cpu.items()},
        "recorder_caught_up_after_s": stack.recorder_lag_s(),
    }
    print(json.dumps(details, indent=1), file=sys.stderr)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({**summary, "details": details}, indent=1) + "\n")
    print(json.dumps(summary))


def run_bench(
    bench: str,
    results: Path,
    options,
    load_for: Callable[[int, list[str], float], dict],
    interface: str = "asgi",
    details: dict | None = None,
) -> int:
    """Runs the stack (see the module's docstring), warms up with a second of `load_for(port,
    tokens, seconds)`, then measures `options.seconds` of it: the CPU of every part, the answers'
    statuses and latencies. Shared by `make bench-api` and `make bench-ws`."""
    with bench_stack(bench, options) as stack:
        port = free_port()
        tokens = prepare(stack.env, options.clients)
        manage = [sys.executable, "manage.py"]
        engine = stack.spawn("engine", [*manage, "run_engine", "--symbols", SYMBOL])
        recorder = stack.spawn("recorder", [*manage, "run_recorder", "--symbols", SYMBOL])
        web = stack.spawn("uvicorn", server_command(interface, port, options.workers))
        wait_ready(port, tokens[0])
        time.sleep(1.0)  # let every uvicorn worker finish starting
        stack.check_running()

        # Warm up (connections, caches, the engine's first batches); not measured.
        load_for(port, tokens, 1.0)
        worker_pids = children(web.pid)
        redis_pid = stack.redis_pid()
        meter = CpuMeter(
            {
                "uvicorn_workers": lambda: worker_pids,
                "engine": lambda: [engine.pid],
                "recorder": lambda: [recorder.pid],
                **({"postgresql": postgres_pids} if stack.use_postgres else {}),
                "redis": lambda: [redis_pid],  # 0 when Redis is not local
            }
        )
        client_before = time.process_time()
        with meter:
            out = load_for(port, tokens, options.seconds)
        elapsed = out["elapsed"]
        cpu = meter.used()
        cpu["client"] = time.process_time() - client_before
        statuses = out["statuses"]
        ok = sum(1 for s in statuses if 200 <= s < 300)
        codes: dict[int, int] = {}
        for s in statuses:
            codes[s] = codes.get(s, 0) + 1
        summary = {
            "bench": bench,
            "orders_per_s": round(ok / elapsed),
            "errors": len(statuses) - ok,
            # The web workers' CPU per order answered: what order entry itself costs.
            "web_cpu_us_per_order": round(cpu["uvicorn_workers"] / max(ok, 1) * 1e6, 1),
        }
        details = {
            "clients": options.clients,
            "uvicorn_workers": options.workers,
            **(details or {}),
            "statuses": codes,
            "error_samples": out["samples"],
        }
        report(
            results,
            summary,
            stack,
            latencies=out["latencies"],
            elapsed=elapsed,
            cpu=cpu,
            orders=ok,
            details=details,
        )
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--interface",
        choices=("asgi", "wsgi"),
        default="asgi",
        help="asgi (production) or wsgi (the same Django app under uvicorn's WSGI adapter)",
    )
    parser.add_argument("--no-wait", action="store_true", help="wait=false: the 202 path")
    database_options(parser)
    options = parser.parse_args()
    wait = not options.no_wait
    return run_bench(
        "api",
        RESULTS,
        options,
        lambda port, tokens, seconds: asyncio.run(load(port, tokens, seconds, wait)),
        interface=options.interface,
        details={"wait": wait, "interface": options.interface},
    )


if __name__ == "__main__":
    sys.exit(main())
