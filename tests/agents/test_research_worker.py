"""`run_research`, the real process, on a database it shares with the test (SQLite file or the
PostgreSQL test database): it runs queued runs one at a time as child `simulate` processes to
their files and manifest, records a failure with the simulation's own words, kills a cancelled
run, gives its run back when stopped, and a run survives its worker killed with -9 (the next
worker starts it over, and the simulation died with the first)."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.models import ResearchRun
from agents.research_runs import selectors, services
from tests.recorder.support import subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def running(pid: int | None) -> bool:
    """A process that runs (a zombie waiting for its parent to reap it does not)."""
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_for(predicate, timeout: float, what: str, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if worker is not None:
            worker.check()
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s" + (f"\n{worker.log()}" if worker else ""))


def row(run: ResearchRun) -> ResearchRun:
    run.refresh_from_db()
    return run


class Worker:
    """One `run_research` process; its output in a file."""

    def __init__(self, env: dict, log: Path) -> None:
        self.path = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_research", "--poll", "0.2"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def log(self) -> str:
        return self.path.read_text(errors="replace")[-4000:]

    def check(self) -> None:
        assert self.process.poll() is None, f"the worker exited:\n{self.log()}"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@pytest.fixture
def env(file_db, tmp_path, settings):
    settings.RESEARCH_RUNS_DIR = tmp_path / "runs"
    return subprocess_env(file_db) | {"RESEARCH_RUNS_DIR": str(settings.RESEARCH_RUNS_DIR)}


@pytest.fixture
def workers(env, tmp_path):
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(env, tmp_path / "worker.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def check_manifest(out: Path) -> dict:
    """Every file of the manifest is there with its digest."""
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    return manifest


def test_queued_runs_run_one_at_a_time_to_their_files_and_a_failure_keeps_its_error(workers):
    good = services.run_queue(
        user=None, source="preset", preset="small", seed=3, start="09:30", end="09:35"
    )
    # A preset `simulate` does not know, written past the service's checks: the run fails, and
    # says why in simulate's own words.
    bad_dir = Path(good.out_dir).parents[1] / "bad" / "out"
    bad = ResearchRun.objects.create(source="preset", preset="nope", out_dir=str(bad_dir))
    # A directory outside the runs' own is never emptied: the run fails, the directory stays.
    elsewhere = Path(good.out_dir).parents[2] / "not-a-run"
    (elsewhere / "keep").mkdir(parents=True)
    outside = ResearchRun.objects.create(source="preset", preset="small", out_dir=str(elsewhere))
    pooled = services.run_queue(
        user=None, source="preset", preset="small", seed=8, runs=2, start="09:30", end="09:32"
    )
    worker = workers()
    wait_for(
        lambda: all(row(r).finished for r in (good, bad, outside, pooled)),
        90,
        "the runs ended",
        worker,
    )

    assert good.state == "done", good.error
    assert (good.done_s, good.total_s, good.attempts) == (300.0, 300.0, 1)
    out = Path(good.out_dir)
    manifest = check_manifest(out)
    summary = json.loads((out / "summary.json").read_text())
    assert manifest["seeds"] == [3] and summary["seed"] == 3
    assert (
        summary["session"]["start"].startswith("09:30")
        and good.messages == summary["counts"]["messages"]
    )
    report = selectors.run_report(good)
    assert len(report.facts) == 8 and sum(f.deeper for f in report.facts) == 4
    assert "plots/price_path.png" in report.plots
    assert {f.path for f in report.files} >= {"summary.json", "trades.csv", "manifest.json"}

    assert outside.state == "failed" and "not under RESEARCH_RUNS_DIR" in outside.error
    assert (elsewhere / "keep").is_dir()

    assert bad.state == "failed"
    assert "invalid choice: 'nope'" in bad.error
    # Two seeds: their facts pooled (facts.json), each seed's files under seed-N/.
    assert pooled.state == "done", pooled.error
    assert (pooled.done_s, pooled.total_s) == (240.0, 240.0)
    report = selectors.run_report(pooled)
    assert report.pooled and report.seeds == [8, 9] and len(report.facts) == 8
    assert {"seed-8/summary.json", "seed-9/trades.csv", "facts.json"} <= {
        f.path for f in report.files
    }
    check_manifest(Path(pooled.out_dir))

    # One at a time, oldest first: each began after the one before it ended.
    assert good.finished_at <= bad.started_at and bad.finished_at <= outside.started_at
    assert outside.finished_at <= pooled.started_at


def test_a_run_survives_its_worker_killed_and_starts_over(workers):
    run = services.run_queue(
        user=None, source="preset", preset="rmsc04", seed=2, start="09:30", end="10:15"
    )
    first = workers()
    wait_for(lambda: row(run).done_s > 0, 60, "the run made progress", first)
    assert row(run).state == "running" and run.done_s < run.total_s
    child = run.child_pid
    assert running(child)
    first.process.kill()  # -9: no clean-up of any kind
    first.process.wait()
    # The simulation dies with its worker (PR_SET_PDEATHSIG), not left writing into the run.
    wait_for(lambda: not running(child), 5, "the orphaned simulation died")
    assert row(run).state == "running"  # as the dead worker left it

    second = workers()
    wait_for(lambda: row(run).finished, 120, "the run finished after the restart", second)
    assert (run.state, run.attempts, run.error) == ("done", 2, "")
    assert run.worker_pid == second.process.pid
    check_manifest(Path(run.out_dir))
    assert "queued again" in second.log()


def test_a_cancelled_run_is_killed_and_a_stopping_worker_gives_its_run_back(workers):
    day = services.run_queue(user=None, source="preset", preset="rmsc04", seed=1)
    worker = workers()
    wait_for(lambda: row(day).done_s > 0, 60, "the run made progress", worker)
    child = day.child_pid
    services.run_cancel(run_id=day.pk)
    wait_for(lambda: row(day).finished, 15, "the cancel took", worker)
    assert day.state == "cancelled" and day.done_s < day.total_s
    assert not running(child)

    again = services.run_queue(user=None, source="preset", preset="rmsc04", seed=4)
    wait_for(lambda: row(again).done_s > 0, 60, "the next run made progress", worker)
    child = again.child_pid
    assert worker.stop() == 0
    assert not running(child)
    assert (row(again).state, again.worker_token, again.done_s) == ("queued", "", 0.0)


def test_a_fork_run_starts_from_the_live_market(workers):
    """A run queued as a fork of a live instrument: `simulate --fork` in the child, its capture,
    its branch and its comparison in the run's directory."""
    from agents.research.config import parse_time_of_day
    from agents.services import agent_config_create
    from tests.recorder.support import make_instrument

    make_instrument("FRK")
    agent_config_create(
        name="frk-mm", strategy="market_maker", symbol="FRK", wake_rate_hz=2.0, max_position=500
    )
    for i in range(3):
        agent_config_create(name=f"frk-noise{i}", strategy="noise", symbol="FRK", max_position=50)
    run = services.run_queue(user=None, source="fork", fork_symbol="FRK", seed=4)
    worker = workers()
    wait_for(lambda: row(run).finished, 90, "the fork run ended", worker)
    assert run.state == "done", run.error
    out = Path(run.out_dir)
    manifest = check_manifest(out)
    assert manifest["fork"]["symbol"] == "FRK" and "fork.json" in manifest["files"]
    summary = json.loads((out / "as-is" / "summary.json").read_text())
    assert summary["fork"]["symbol"] == "FRK" and summary["counts"]["trades"] > 0
    # An hour, or to midnight UTC when the fork was taken later than 23:00.
    session = summary["session"]
    start, end = (parse_time_of_day(session[k]) for k in ("start", "end"))
    assert run.done_s == run.total_s == (end - start) / 1e9 <= 3600.0
