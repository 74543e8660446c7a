"""Writes of the research runs: queueing and cancelling (the pages), and what the worker
(`run_research`, `worker.py`) does to a run — claim it, report its progress, finish it, give it
back — and how runs left by a dead worker go back to the queue.

Ownership: a running row names its worker (`worker_token`, with its host and pid). Every write
the worker makes is conditional on that token, in one UPDATE, so a worker that lost its run (its
lease expired and another worker took it over) learns so from the row count and stops — on
SQLite and PostgreSQL alike, without row locks held across the run.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from agents.models import ResearchRun
from agents.research.config import ConfigError, config_from_mapping, parse_time_of_day
from agents.research.presets import PRESETS, preset_data
from exchange import selectors as exchange_selectors
from exchange.errors import Conflict, InvalidInput, NotFound

State = ResearchRun.State
Source = ResearchRun.Source

SEED_MAX = 2**31 - 1  # the column's range on every database
RUNS_MAX = 50
CONFIG_MAX_CHARS = 200_000
#: A running row whose heartbeat is older than this has lost its worker (any host).
LEASE_S = 30.0


@dataclass(frozen=True)
class WorkerId:
    host: str
    pid: int
    token: str

    @classmethod
    def this_process(cls) -> WorkerId:
        return cls(host=socket.gethostname(), pid=os.getpid(), token=uuid.uuid4().hex)


# --- The pages ----------------------------------------------------------------------------------


def _session(start: str, end: str) -> tuple[int | None, int | None]:
    try:
        start_ns = parse_time_of_day(start, "start") if start else None
        end_ns = parse_time_of_day(end, "end") if end else None
    except ConfigError as error:
        raise InvalidInput(f"{error.message}.", field=error.path) from None
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise InvalidInput("The session must end after it starts.", field="end")
    return start_ns, end_ns


def _config_data(text: str):
    import yaml

    if not text.strip():
        raise InvalidInput("Paste a configuration (YAML or JSON).", field="config_text")
    if len(text) > CONFIG_MAX_CHARS:
        raise InvalidInput(
            f"The configuration is longer than {CONFIG_MAX_CHARS:,} characters.",
            field="config_text",
        )
    try:
        # YAML is a superset of JSON: one parser reads both, as `simulate --config` does.
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidInput(f"Not valid YAML or JSON: {error}", field="config_text") from None


def run_queue(
    *,
    user,
    source: str,
    preset: str = "",
    config_text: str = "",
    fork_symbol: str = "",
    seed: int = 1,
    runs: int = 1,
    start: str = "",
    end: str = "",
) -> ResearchRun:
    """Queues a run after checking everything `simulate` would check first, so that a bad
    configuration is refused here (naming its field: `config_text`, and inside it the
    configuration's own path, e.g. `agents[1].params.size_max`) and nothing is written."""
    start, end = (start or "").strip(), (end or "").strip()
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise InvalidInput(f"The seed must be a whole number from 0 to {SEED_MAX}.", field="seed")
    if not isinstance(runs, int) or isinstance(runs, bool) or not 1 <= runs <= RUNS_MAX:
        raise InvalidInput(f"Runs must be from 1 to {RUNS_MAX} seeds.", field="runs")
    start_ns, end_ns = _session(start, end)
    fields = {"preset": "", "config_text": "", "fork_symbol": ""}
    if source == Source.PRESET:
        if preset not in PRESETS:
            raise InvalidInput(
                f"Unknown preset {preset!r} (expected one of: {', '.join(sorted(PRESETS))}).",
                field="preset",
            )
        data, fields["preset"] = preset_data(preset), preset
    elif source == Source.CONFIG:
        data, fields["config_text"] = _config_data(config_text), config_text
    elif source == Source.FORK:
        data = None  # the fork's configuration is the live market's when the run starts
        if start or end:
            raise InvalidInput(
                "A fork starts from the live market when it runs and lasts an hour: it takes "
                "no session times.",
                field="start" if start else "end",
            )
        symbol = (fork_symbol or "").strip().upper()
        if not exchange_selectors.instrument_list().filter(symbol=symbol, enabled=True).exists():
            raise InvalidInput(f"No listed instrument {symbol!r} to fork.", field="fork_symbol")
        fields["fork_symbol"] = symbol
    else:
        raise InvalidInput(
            f"Unknown source {source!r} (expected one of: {', '.join(Source.values)}).",
            field="source",
        )
    total_s = 0.0
    if data is not None:
        try:
            config = config_from_mapping(data)
        except ConfigError as error:
            where = f"{error.path}: " if error.path else ""
            raise InvalidInput(
                f"invalid configuration: {where}{error.message}",
                field="config_text" if source == Source.CONFIG else "preset",
            ) from None
        try:
            config = config.with_session(start_ns, end_ns)
        except ConfigError as error:  # the session given ends before the configuration's starts
            raise InvalidInput(
                f"The session must end after it starts ({error.path}).",
                field="end" if end else "start",
            ) from None
        total_s = (config.end_ns - config.start_ns) / 1e9 * runs
    with transaction.atomic():
        run = ResearchRun.objects.create(
            queued_by=user if user is not None and user.is_authenticated else None,
            source=source, seed=seed, runs=runs, start=start, end=end, total_s=total_s,
            **fields,
        )  # fmt: skip
        run.out_dir = str(Path(settings.RESEARCH_RUNS_DIR) / str(run.pk) / "out")
        run.save(update_fields=["out_dir"])
    return run


def run_cancel(*, run_id: int) -> ResearchRun:
    """A queued run is cancelled at once; a running one is asked to stop (its worker kills the
    simulation within a couple of seconds and marks it cancelled)."""
    now = timezone.now()
    if ResearchRun.objects.filter(pk=run_id, state=State.QUEUED).update(
        state=State.CANCELLED, cancel_requested=True, finished_at=now
    ):
        return ResearchRun.objects.get(pk=run_id)
    if ResearchRun.objects.filter(pk=run_id, state=State.RUNNING).update(cancel_requested=True):
        return ResearchRun.objects.get(pk=run_id)
    run = ResearchRun.objects.filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No research run {run_id}.")
    raise Conflict(f"Run {run_id} has already finished ({run.state}).", code="run_finished")


# --- The worker ---------------------------------------------------------------------------------


def _owned(run_id: int, worker: WorkerId):
    return ResearchRun.objects.filter(pk=run_id, state=State.RUNNING, worker_token=worker.token)


def run_claim(*, worker: WorkerId) -> ResearchRun | None:
    """Takes the oldest queued run for `worker`, or None. The state moves from queued to running
    in one conditional UPDATE: of two workers that pick the same row, one updates it and the
    other finds it gone and tries the next."""
    while True:
        candidate = (
            ResearchRun.objects.filter(state=State.QUEUED)
            .order_by("created_at", "id")
            .values_list("pk", flat=True)
            .first()
        )
        if candidate is None:
            return None
        now = timezone.now()
        taken = ResearchRun.objects.filter(pk=candidate, state=State.QUEUED).update(
            state=State.RUNNING,
            worker_host=worker.host,
            worker_pid=worker.pid,
            worker_token=worker.token,
            child_pid=None,
            attempts=F("attempts") + 1,
            started_at=now,
            heartbeat_at=now,
            done_s=0.0,
            messages=0,
            error="",
        )
        if taken:
            return ResearchRun.objects.get(pk=candidate)


def run_child_started(*, run_id: int, worker: WorkerId, child_pid: int) -> bool:
    return bool(_owned(run_id, worker).update(child_pid=child_pid, heartbeat_at=timezone.now()))


def run_heartbeat(*, run_id: int, worker: WorkerId, progress: dict | None) -> str:
    """Renews the worker's lease and stores the progress read from the simulation.
    "ok"; "cancel" when staff asked to cancel it; "lost" when the run is no longer this
    worker's (its lease expired and another worker took it)."""
    values = {"heartbeat_at": timezone.now()}
    if progress:
        values.update(
            done_s=float(progress.get("done_s", 0.0)),
            total_s=float(progress.get("total_s", 0.0)),
            messages=int(progress.get("messages", 0)),
        )
    if not _owned(run_id, worker).update(**values):
        return "lost"
    cancel = ResearchRun.objects.filter(pk=run_id).values_list("cancel_requested", flat=True)
    return "cancel" if cancel.first() else "ok"


def run_finish(*, run_id: int, worker: WorkerId, state: str, error: str = "") -> bool:
    """Done, failed (with the end of the simulation's output) or cancelled; False when the run
    was no longer this worker's."""
    if state not in (State.DONE, State.FAILED, State.CANCELLED):
        raise ValueError(f"not a final state: {state!r}")
    values = {"state": state, "error": error, "finished_at": timezone.now(), "child_pid": None}
    if state == State.DONE:
        values["done_s"] = F("total_s")
    return bool(_owned(run_id, worker).update(**values))


def _back_to_queue(query) -> int:
    """The runs `query` selects (running rows, each still held by the worker it names) go back
    to the queue — or to cancelled, when staff asked for that meanwhile."""
    now = timezone.now()
    cancelled = query.filter(cancel_requested=True).update(
        state=State.CANCELLED, finished_at=now, child_pid=None
    )
    queued = query.filter(cancel_requested=False).update(
        state=State.QUEUED, worker_token="", worker_pid=None, child_pid=None, done_s=0.0,
        messages=0,
    )  # fmt: skip
    return cancelled + queued


def run_release(*, run_id: int, worker: WorkerId) -> bool:
    """A stopping worker gives its run back: it starts over with the next worker."""
    return bool(_back_to_queue(_owned(run_id, worker)))


@dataclass(frozen=True)
class Abandoned:
    id: int
    out_dir: str
    worker_host: str
    child_pid: int | None


def run_requeue_abandoned(
    *,
    worker: WorkerId,
    worker_alive: Callable[[int], bool],
    lease_s: float = LEASE_S,
) -> list[Abandoned]:
    """Running rows whose worker is gone go back to the queue, to start over: on this host,
    those whose worker process is dead (`worker_alive(pid)` False, or the pid is this process's:
    a container restarts its worker as the same pid) at once; on any host, those whose heartbeat
    is older than `lease_s`. Returns them (each with the simulation's pid, which the caller kills
    if it outlived its worker)."""
    stale = timezone.now() - timedelta(seconds=lease_s)
    abandoned = []
    for row in ResearchRun.objects.filter(state=State.RUNNING).exclude(worker_token=worker.token):
        pid = row.worker_pid
        local_dead = row.worker_host == worker.host and (
            pid is None or pid == worker.pid or not worker_alive(pid)
        )
        if not local_dead and (row.heartbeat_at is None or row.heartbeat_at >= stale):
            continue
        # Conditional on the token read: a worker that renewed or finished it meanwhile keeps it.
        held = ResearchRun.objects.filter(
            pk=row.pk, state=State.RUNNING, worker_token=row.worker_token
        )
        if not local_dead:
            held = held.filter(heartbeat_at__lt=stale)
        if _back_to_queue(held):
            abandoned.append(Abandoned(row.pk, row.out_dir, row.worker_host, row.child_pid))
    return abandoned
