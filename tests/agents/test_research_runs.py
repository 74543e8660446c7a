"""Research runs queued from the site: queueing (a bad input is refused naming its field, and
nothing is written), claiming (two workers never take one run), the worker's lease and the
recovery of runs left by dead workers, cancelling, the files a run may serve, the progress
file `simulate` writes for the worker, and the pages' access and form. The worker process
itself: test_research_worker.py; the pages in a browser: tests/browser/test_research_runs.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client
from django.utils import timezone

from agents.models import ResearchRun
from agents.research.progress import ProgressFile
from agents.research_runs import selectors, services
from agents.research_runs.services import WorkerId
from agents.research_runs.worker import _worker_alive
from exchange.errors import Conflict, InvalidInput

ROOT = Path(__file__).resolve().parents[2]
State = ResearchRun.State

BAD_STRATEGY = """
symbol: ACME
agents:
  - {name: maker, strategy: hft, count: 1, wake_rate_hz: 1.0}
"""


@pytest.fixture
def runs_dir(settings, tmp_path):
    settings.RESEARCH_RUNS_DIR = tmp_path / "runs"
    return settings.RESEARCH_RUNS_DIR


def _queue(**kwargs) -> ResearchRun:
    args = {"user": None, "source": "preset", "preset": "small"} | kwargs
    return services.run_queue(**args)


# --- Queueing -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_preset_run_is_queued_with_its_session_total_and_its_own_directory(runs_dir):
    run = _queue(seed=7, runs=2, start="09:30", end="09:35")
    run.refresh_from_db()
    assert (run.state, run.source, run.preset) == ("queued", "preset", "small")
    assert (run.seed, run.runs) == (7, 2)
    assert run.total_s == 2 * 300
    assert Path(run.out_dir) == runs_dir / str(run.pk) / "out"


@pytest.mark.django_db
def test_a_configuration_run_keeps_its_text(runs_dir):
    text = "symbol: GLOBEX\nstart: '10:00'\nend: '10:10'\nagents:\n" + (
        "  - {name: n, strategy: noise, count: 5, wake_rate_hz: 0.5}\n"
    )
    run = _queue(source="config", preset="", config_text=text)
    assert run.config_text == text and run.total_s == 600


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"source": "config", "config_text": BAD_STRATEGY}, "config_text",
         "agents[0].strategy: unknown strategy 'hft'"),
        ({"source": "config", "config_text": "agents: [unclosed"}, "config_text", "Not valid YAML"),
        ({"source": "config", "config_text": "  "}, "config_text", "Paste a configuration"),
        ({"source": "config", "config_text": "symbol: ACME\n"}, "config_text",
         "agents: is required"),
        ({"preset": "huge"}, "preset", "Unknown preset 'huge'"),
        ({"seed": -1}, "seed", "seed"),
        ({"seed": 2**31}, "seed", "seed"),
        ({"runs": 0}, "runs", "Runs"),
        ({"start": "25:00"}, "start", "not a valid time of day"),
        ({"end": "noon"}, "end", "must be a time of day"),
        ({"start": "09:40", "end": "09:35"}, "end", "must end after it starts"),
        ({"end": "09:00"}, "end", "must end after it starts"),  # the preset starts at 09:30
        ({"source": "backtest"}, "source", "Unknown source"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    runs_dir, kwargs, field, words
):
    with pytest.raises(InvalidInput) as refused:
        _queue(**kwargs)
    assert refused.value.field == field
    assert words in refused.value.message
    assert not ResearchRun.objects.exists()
    assert not runs_dir.exists()


@pytest.mark.django_db
def test_a_fork_names_a_listed_instrument(runs_dir):
    with pytest.raises(InvalidInput) as refused:
        _queue(source="fork", fork_symbol="NOPE")
    assert refused.value.field == "fork_symbol"
    with pytest.raises(InvalidInput) as refused:
        _queue(source="fork", fork_symbol="ACME", end="10:00")
    assert refused.value.field == "end" and "no session times" in refused.value.message


# --- Claiming, the lease, finishing -------------------------------------------------------------


def _worker(host="here", pid=None) -> WorkerId:
    return WorkerId(host=host, pid=pid or os.getpid(), token=os.urandom(8).hex())


@pytest.mark.django_db
def test_workers_take_the_oldest_queued_run_first_and_never_the_same(runs_dir):
    first, second = _queue(seed=1), _queue(seed=2)
    a, b = _worker(), _worker()
    taken_a = services.run_claim(worker=a)
    taken_b = services.run_claim(worker=b)
    assert (taken_a.pk, taken_b.pk) == (first.pk, second.pk)
    assert services.run_claim(worker=a) is None
    assert (taken_a.state, taken_a.worker_token, taken_a.attempts) == ("running", a.token, 1)
    assert taken_a.started_at is not None and taken_a.heartbeat_at is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_claim_each_run_exactly_once(file_db, runs_dir):
    """Four threads, each with its own connection to a database other processes could share,
    claim as fast as they can: every run is taken once."""
    ids = {_queue(seed=seed).pk for seed in range(24)}
    claimed: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def claim_all():
        try:
            worker = _worker()
            barrier.wait()
            while (run := services.run_claim(worker=worker)) is not None:
                claimed.append(run.pk)
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(claimed) == sorted(ids)
    assert ResearchRun.objects.filter(state=State.RUNNING).count() == len(ids)


@pytest.mark.django_db
def test_the_heartbeat_stores_progress_and_reports_a_cancel_or_a_lost_run(runs_dir):
    run = _queue()
    worker = _worker()
    services.run_claim(worker=worker)
    progress = {"done_s": 120.0, "total_s": 900.0, "messages": 5000}
    assert services.run_heartbeat(run_id=run.pk, worker=worker, progress=progress) == "ok"
    run.refresh_from_db()
    assert (run.done_s, run.total_s, run.messages) == (120.0, 900.0, 5000)
    assert selectors.run_progress(run)["percent"] == 13  # whole percent, not rounded up

    services.run_cancel(run_id=run.pk)
    assert services.run_heartbeat(run_id=run.pk, worker=worker, progress=None) == "cancel"
    assert services.run_heartbeat(run_id=run.pk, worker=_worker(), progress=None) == "lost"
    assert services.run_finish(run_id=run.pk, worker=worker, state=State.CANCELLED)
    run.refresh_from_db()
    assert run.state == "cancelled" and run.finished_at is not None


@pytest.mark.django_db
def test_a_worker_that_lost_its_run_cannot_finish_it(runs_dir):
    run = _queue()
    old, new = _worker(host="a"), _worker(host="b")
    services.run_claim(worker=old)
    ResearchRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    requeued = services.run_requeue_abandoned(worker=new, worker_alive=lambda pid: True)
    assert [r.id for r in requeued] == [run.pk]
    assert services.run_claim(worker=new).pk == run.pk
    assert services.run_heartbeat(run_id=run.pk, worker=old, progress=None) == "lost"
    assert not services.run_finish(run_id=run.pk, worker=old, state=State.FAILED, error="x")
    assert services.run_finish(run_id=run.pk, worker=new, state=State.DONE)
    run.refresh_from_db()
    assert (run.state, run.attempts, run.error) == ("done", 2, "")


# --- Recovery after a dead worker ---------------------------------------------------------------


def _running(worker: WorkerId, **extra) -> ResearchRun:
    run = _queue()
    services.run_claim(worker=worker)
    if extra:
        ResearchRun.objects.filter(pk=run.pk).update(**extra)
    run.refresh_from_db()
    return run


@pytest.mark.django_db
def test_runs_of_a_dead_worker_on_this_host_go_back_to_the_queue_at_once(runs_dir):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    not_a_worker = subprocess.Popen(["sleep", "30"])
    try:
        me = _worker(host="box")
        dead = _running(_worker(host="box", pid=gone.pid))
        # The pid is now another program's:
        reused_pid = _running(_worker(host="box", pid=not_a_worker.pid))
        restarted = _running(_worker(host="box", pid=me.pid))  # a container's worker is pid 1 again
        elsewhere = _running(_worker(host="other", pid=gone.pid))  # another host: its lease decides
        cancelled = _running(_worker(host="box", pid=gone.pid), cancel_requested=True)
        requeued = services.run_requeue_abandoned(worker=me, worker_alive=_worker_alive)
    finally:
        not_a_worker.kill()
        not_a_worker.wait()
    assert {r.id for r in requeued} == {dead.pk, reused_pid.pk, restarted.pk, cancelled.pk}
    states = dict(ResearchRun.objects.values_list("pk", "state"))
    assert states[dead.pk] == states[reused_pid.pk] == states[restarted.pk] == "queued"
    assert states[elsewhere.pk] == "running"
    assert states[cancelled.pk] == "cancelled"
    again = ResearchRun.objects.get(pk=dead.pk)
    assert (again.worker_token, again.done_s, again.child_pid) == ("", 0.0, None)


@pytest.mark.django_db
def test_a_live_worker_keeps_its_run_until_its_lease_expires(runs_dir):
    me = _worker(host="box")
    fresh = _running(_worker(host="other"))
    stale = _running(_worker(host="other"), heartbeat_at=timezone.now() - timedelta(seconds=31))
    live_here = _running(_worker(host="box", pid=os.getppid()))
    requeued = services.run_requeue_abandoned(worker=me, worker_alive=lambda pid: True, lease_s=30)
    assert [r.id for r in requeued] == [stale.pk]
    states = dict(ResearchRun.objects.values_list("pk", "state"))
    assert (states[fresh.pk], states[live_here.pk], states[stale.pk]) == (
        "running", "running", "queued",
    )  # fmt: skip


# --- Cancelling ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cancelling_a_queued_run_ends_it_and_a_running_one_asks_its_worker(runs_dir):
    queued, running = _queue(), _queue()
    worker = _worker()
    services.run_claim(worker=worker)  # the older one: `queued` is now running
    queued, running = running, queued
    assert services.run_cancel(run_id=queued.pk).state == "cancelled"
    asked = services.run_cancel(run_id=running.pk)
    assert (asked.state, asked.cancel_requested) == ("running", True)
    services.run_finish(run_id=running.pk, worker=worker, state=State.CANCELLED)
    with pytest.raises(Conflict):
        services.run_cancel(run_id=running.pk)


# --- The files a run serves ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_serves_files_inside_its_directory_only(runs_dir, tmp_path):
    run = _queue()
    out = Path(run.out_dir)
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "a.png").write_bytes(b"png")
    (runs_dir / str(run.pk) / "simulate.log").write_text("outside out/")
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    (out / "escape").symlink_to(secret)
    assert selectors.run_file(run, "plots/a.png") == (out / "plots" / "a.png").resolve()
    for path in ["../simulate.log", str(secret), "escape", "plots", "", "missing.csv", "a\0b"]:
        with pytest.raises(Exception) as refused:
            selectors.run_file(run, path)
        assert refused.type.__name__ == "NotFound", path


# --- simulate --progress-file -------------------------------------------------------------------


def test_the_progress_file_is_replaced_whole_and_counts_every_seed(tmp_path):
    path = tmp_path / "progress.json"
    progress = ProgressFile(path, session_s=60.0, runs=2, every_s=0.0)
    assert json.loads(path.read_text()) == {"done_s": 0.0, "total_s": 120.0, "messages": 0}
    progress.update(5, 30 * 10**9, 1000)
    progress.update(5, 60 * 10**9, 2000)
    progress.update(6, 10 * 10**9, 300)  # the next seed counts its messages from zero
    state = json.loads(path.read_text())
    assert (state["done_s"], state["messages"], state["seed"], state["runs_done"]) == (
        70.0, 2300, 6, 1,
    )  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]  # no partial file left


def test_the_progress_file_is_written_at_most_once_a_period(tmp_path):
    path = tmp_path / "progress.json"
    progress = ProgressFile(path, session_s=60.0, runs=1, every_s=3600.0)
    progress.update(1, 30 * 10**9, 1000)
    assert json.loads(path.read_text())["done_s"] == 0.0  # written at the start, not again yet
    progress.close()
    assert json.loads(path.read_text())["done_s"] == 30.0


def test_simulate_writes_its_progress_file(tmp_path):
    progress = tmp_path / "progress.json"
    env = dict(os.environ, DEBUG="1")
    subprocess.run(
        [sys.executable, "manage.py", "simulate", "--preset", "small", "--start", "09:30",
         "--end", "09:32", "--no-report", "--no-progress", "--outputs", "trades",
         "--out", str(tmp_path / "out"), "--progress-file", str(progress)],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    state = json.loads(progress.read_text())
    assert state["done_s"] == state["total_s"] == 120.0
    assert state["messages"] > 0


# --- The pages: staff only, and the form ----------------------------------------------------------


@pytest.fixture
def users(db):
    model = get_user_model()
    staff = model.objects.create_user("boss", password="x", is_staff=True)
    member = model.objects.create_user("member", password="x")
    return staff, member


def _client(user=None) -> Client:
    client = Client(HTTP_HOST="localhost")
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.django_db
def test_only_staff_reach_the_research_pages(users, runs_dir):
    staff, member = users
    run = _queue()
    out = Path(run.out_dir)
    out.mkdir(parents=True)
    (out / "trades.csv").write_text("time,price\n")
    urls = [
        "/research/runs/", "/research/runs/new/", f"/research/runs/{run.pk}/",
        f"/research/runs/{run.pk}/progress/", f"/research/runs/{run.pk}/files/trades.csv",
    ]  # fmt: skip
    for url in urls:
        anonymous = _client().get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/"), url
        assert _client(member).get(url).status_code == 403, url
        assert _client(staff).get(url).status_code == 200, url
    assert _client(member).post(f"/research/runs/{run.pk}/cancel/").status_code == 403
    assert _client(member).post("/research/runs/new/", {"source": "preset"}).status_code == 403
    assert ResearchRun.objects.get(pk=run.pk).state == "queued"
    menu = _client(staff).get("/research/runs/").content.decode()
    assert 'href="/research/runs/"' in menu
    assert 'href="/research/runs/"' not in _client(member).get("/history/").content.decode()


@pytest.mark.django_db
def test_the_form_shows_a_bad_configuration_on_its_field_and_queues_a_good_run(users, runs_dir):
    staff, _ = users
    client = _client(staff)
    form = {"source": "config", "preset": "small", "config_text": BAD_STRATEGY, "seed": "1",
            "runs": "1", "start": "", "end": ""}  # fmt: skip
    refused = client.post("/research/runs/new/", form)
    assert refused.status_code == 400
    page = refused.content.decode()
    assert 'data-field-error="config_text">invalid configuration: agents[0].strategy' in page
    assert BAD_STRATEGY.strip().splitlines()[-1].replace("'", "&#x27;") in page  # the text kept
    assert not ResearchRun.objects.exists()

    refused = client.post("/research/runs/new/", form | {"source": "preset", "seed": "-3"})
    assert refused.status_code == 400 and 'data-field-error="seed"' in refused.content.decode()

    queued = client.post(
        "/research/runs/new/", form | {"source": "preset", "start": "09:30", "end": "09:35"}
    )
    run = ResearchRun.objects.get()
    assert queued.status_code == 302 and queued["Location"] == f"/research/runs/{run.pk}/"
    assert (run.source, run.preset, run.start, run.end, run.queued_by) == (
        "preset", "small", "09:30", "09:35", staff,
    )  # fmt: skip
    progress = client.get(f"/research/runs/{run.pk}/progress/").json()
    assert (progress["state"], progress["total_s"]) == ("queued", 300.0)
    assert not progress["finished"]
    cancelled = client.post(f"/research/runs/{run.pk}/cancel/")
    assert cancelled.status_code == 302
    assert client.get(f"/research/runs/{run.pk}/progress/").json()["state"] == "cancelled"


def test_a_fact_the_run_cannot_measure_is_shown_as_such_not_as_failed():
    # The impact law without execution agents: met is None in facts.json.
    facts = {
        "facts": [{"name": "Heavy tails", "met": True, "value": {}}],
        "deeper": {
            "facts": [
                {"name": "Square-root impact of metaorders", "met": None, "value": {}},
                {"name": "Power-law tails", "met": False, "value": {}},
            ]
        },
    }
    assert [f.met for f in selectors._facts(facts)] == [True, None, False]
