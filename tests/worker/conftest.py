"""Fixtures for the engine-worker tests.

They run against a real Redis (``REDIS_URL``, default ``redis://127.0.0.1:6379/0``; ``make
py-test`` starts one if needed), each test under its own key prefix ``t-<uuid>`` whose keys are
deleted afterwards, and they run the worker as a real subprocess, ``manage.py run_engine``, so that
it can be killed with SIGKILL like a crashing production worker. None of them touches the database:
they request no ``db`` fixture, so pytest-django never sets one up for them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def key(prefix: str, kind: str, symbol: str) -> str:
    """A key of the wire protocol (docs/protocol.md): ``{prefix}:{kind}:{SYM}``."""
    return f"{prefix}:{kind}:{{{symbol}}}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if "REDIS_URL" in os.environ:
            pytest.fail(f"no Redis answers at REDIS_URL={url}: {exc}")
        pytest.skip(f"no Redis at {url} (run `make py-test`, which starts one): {exc}")
    return url


@pytest.fixture
def r(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def prefix(r: redis.Redis):
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    yield name
    for batch in _batched(r.scan_iter(match=f"{name}:*", count=1000), 500):
        r.unlink(*batch)


def _batched(items, size):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class WorkerProcess:
    """One ``manage.py run_engine`` subprocess, its logs in files (never a pipe that could fill)."""

    def __init__(self, *, redis_url, prefix, symbols, args, log_dir: Path, index: int):
        self.prefix = prefix
        self.symbols = list(symbols)
        self.stderr_path = log_dir / f"worker-{index}.stderr"
        self.stdout_path = log_dir / f"worker-{index}.stdout"
        env = dict(os.environ, REDIS_URL=redis_url, FLASHBOOK_REDIS_PREFIX=prefix)
        command = [sys.executable, "manage.py", "run_engine", "--symbols", ",".join(symbols)]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*command, *args], cwd=ROOT, env=env, stdout=out, stderr=err
            )
        self.pid = self.proc.pid

    # --- observing ---
    def alive(self) -> bool:
        return self.proc.poll() is None

    def logs(self) -> list[dict]:
        """The worker's structured log lines (JSON on stderr)."""
        records = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass
        return records

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def reports(self) -> list[dict]:
        """The per-symbol reports printed on a clean stop."""
        lines = self.stdout_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def _check_alive(self):
        if not self.alive():
            raise AssertionError(
                f"worker exited with {self.proc.returncode}; stderr:\n{self.stderr()[-3000:]}"
            )

    def wait_for(self, condition, timeout: float, what: str, interval: float = 0.01):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            self._check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

    def wait_drained(self, r: redis.Redis, timeout: float = 60.0) -> dict[str, dict[str, str]]:
        """Waits until this process reports every journal applied up to its last entry, idle
        (the status carries a state hash); returns the status hashes by symbol."""

        def drained():
            statuses = {}
            for symbol in self.symbols:
                last = r.xrevrange(key(self.prefix, "cmd", symbol), count=1)
                status = {
                    k.decode(): v.decode()
                    for k, v in r.hgetall(key(self.prefix, "status", symbol)).items()
                }
                if status.get("pid") != str(self.pid) or "state_hash" not in status:
                    return None
                if last and status.get("jid") != last[0][0].decode():
                    return None
                statuses[symbol] = status
            return statuses

        return self.wait_for(drained, timeout, "the worker to drain its journals")

    # --- stopping ---
    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> int:
        """SIGKILL: no batch finished, nothing flushed, no snapshot — a crash."""
        self.proc.kill()
        return self.proc.wait(30)


@pytest.fixture
def start_worker(redis_url, prefix, tmp_path):
    """``start_worker(["A", "B"], "--snapshot-every", "500")`` starts a worker on this test's
    prefix. Workers still running at the end of the test are killed."""
    started: list[WorkerProcess] = []

    def start(symbols, *args: str) -> WorkerProcess:
        worker = WorkerProcess(
            redis_url=redis_url,
            prefix=prefix,
            symbols=symbols,
            args=list(args),
            log_dir=tmp_path,
            index=len(started),
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.alive():
            worker.kill()
