"""The research runs' worker (`python manage.py run_research`): one asyncio loop that takes the
oldest queued run from the database, runs it as a child process — `python manage.py simulate
... --out DIR --progress-file FILE`, so a run from the site is exactly a run from the command
line, every option included — and keeps its row up to date until it ends. One run at a time per
worker; more workers run more at once (each claims its own: `services.run_claim`).

Restart: a worker that starts puts the runs of dead workers on its host back in the queue at
once (a container restarts its worker under the same pid: that counts as dead too), and every
worker, now and then, those of any host whose heartbeat is older than the lease. A run starts
over from nothing — its directory is emptied — which loses nothing: a run is a pure function of
its configuration and seed.

The simulation dies with its worker: it is started through a small launcher that asks Linux to
SIGKILL it when its parent dies (`prctl(PR_SET_PDEATHSIG)`, kept across `exec`), so a worker
killed with -9 leaves no simulation writing into a directory the next attempt uses. Where that
is not available, recovery kills the orphan by its pid when its command line names the run's
directory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings

from agents.models import ResearchRun
from agents.research_runs import services
from agents.research_runs.selectors import run_home, run_log_path

logger = logging.getLogger("flashbook.research_runs")

State = ResearchRun.State
ERROR_TAIL_CHARS = 3000

# Run by the child's interpreter: arm PR_SET_PDEATHSIG (1) with SIGKILL, then become `simulate`.
# The parent's pid is checked after arming it: a parent that died before then would never send it.
_LAUNCHER = (
    "import ctypes, os, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(70)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n"
)


def simulate_argv(run: ResearchRun, out: Path, progress_file: Path, config_file: Path) -> list:
    """`manage.py simulate`'s arguments for `run`."""
    argv = [str(Path(settings.BASE_DIR) / "manage.py"), "simulate"]
    if run.source == ResearchRun.Source.PRESET:
        argv += ["--preset", run.preset]
    elif run.source == ResearchRun.Source.CONFIG:
        argv += ["--config", str(config_file)]
    else:
        argv += ["--fork", run.fork_symbol]
    argv += ["--seed", str(run.seed), "--runs", str(run.runs)]
    if run.start:
        argv += ["--start", run.start]
    if run.end:
        argv += ["--end", run.end]
    argv += ["--out", str(out), "--progress-file", str(progress_file), "--no-progress"]
    return argv


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker_alive(pid: int) -> bool:
    """A live `run_research` process (a pid reused by another program is no worker)."""
    if not process_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc to ask: alive as far as we can tell (the lease decides)
    return b"run_research" in cmdline


def _kill_orphan(pid: int | None, out_dir: str) -> None:
    """Kills a simulation that outlived its worker, if `pid` is still it."""
    if not pid or not out_dir:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if out_dir.encode() in cmdline:
        logger.warning("killing simulation %d left by a dead worker (%s)", pid, out_dir)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _read_progress(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not written yet (the file is replaced whole, never half-written)


def _log_tail(path: Path) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - ERROR_TAIL_CHARS))
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-20:])


class Worker:
    def __init__(
        self,
        *,
        poll_s: float = 1.0,
        heartbeat_s: float = 1.0,
        lease_s: float = services.LEASE_S,
        kill_grace_s: float = 5.0,
        once: bool = False,
    ) -> None:
        self.id = services.WorkerId.this_process()
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s
        self.lease_s = lease_s
        self.kill_grace_s = kill_grace_s
        self.once = once
        self.stopping = asyncio.Event()

    def request_stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        logger.info("research worker %s (pid %d) started", self.id.host, self.id.pid)
        await self._recover()
        next_recovery = asyncio.get_running_loop().time() + self.lease_s / 2
        while not self.stopping.is_set():
            run = await sync_to_async(services.run_claim)(worker=self.id)
            if run is not None:
                await self._execute(run)
                if self.once:
                    return
                continue
            if self.once:
                return
            if asyncio.get_running_loop().time() >= next_recovery:
                await self._recover()
                next_recovery = asyncio.get_running_loop().time() + self.lease_s / 2
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=self.poll_s)
            except TimeoutError:
                pass

    async def _recover(self) -> None:
        abandoned = await sync_to_async(services.run_requeue_abandoned)(
            worker=self.id, worker_alive=_worker_alive, lease_s=self.lease_s
        )
        for row in abandoned:
            logger.warning("research run %d: its worker is gone; queued again", row.id)
            if row.worker_host == self.id.host:
                _kill_orphan(row.child_pid, row.out_dir)

    async def _execute(self, run: ResearchRun) -> None:
        out = Path(run.out_dir)
        home = run_home(run)
        progress_file = home / "progress.json"
        config_file = home / "config.yaml"
        root = Path(settings.RESEARCH_RUNS_DIR).resolve()
        if not out.resolve().is_relative_to(root):
            # Never empty a directory outside the runs' own (a row written by hand, a setting
            # changed since it was queued).
            await self._fail(run, f"its directory {out} is not under RESEARCH_RUNS_DIR ({root})")
            return
        try:
            # A run that starts over starts from nothing: no file of an earlier attempt is kept.
            await asyncio.to_thread(shutil.rmtree, out, True)
            home.mkdir(parents=True, exist_ok=True)
            progress_file.unlink(missing_ok=True)
            if run.source == ResearchRun.Source.CONFIG:
                config_file.write_text(run.config_text, encoding="utf-8")
            argv = simulate_argv(run, out, progress_file, config_file)
            logger.info("research run %d (attempt %d): simulate %s", run.pk, run.attempts, argv[2:])
            with open(run_log_path(run), "wb") as log:
                child = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", _LAUNCHER, str(os.getpid()), *argv,
                    stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                    cwd=settings.BASE_DIR,
                )  # fmt: skip
        except OSError as error:  # a full disk, a directory it may not write: this run's fault
            await self._fail(run, f"could not start the simulation: {error}")
            return
        await sync_to_async(services.run_child_started)(
            run_id=run.pk, worker=self.id, child_pid=child.pid
        )
        outcome = await self._watch(run, child, progress_file)
        if outcome == "lost":
            logger.warning("research run %d: taken over by another worker; stopped", run.pk)
            return
        if outcome == "stop":
            await sync_to_async(services.run_release)(run_id=run.pk, worker=self.id)
            logger.info("research run %d: worker stopping; queued again", run.pk)
            return
        if outcome == "cancel":
            state, error = State.CANCELLED, ""
        elif child.returncode == 0:
            state, error = State.DONE, ""
        else:
            state = State.FAILED
            error = _log_tail(run_log_path(run)) or f"simulate exited with {child.returncode}"
        await sync_to_async(services.run_heartbeat)(
            run_id=run.pk, worker=self.id, progress=_read_progress(progress_file)
        )
        await sync_to_async(services.run_finish)(
            run_id=run.pk, worker=self.id, state=state, error=error
        )
        logger.info("research run %d: %s", run.pk, state)

    async def _fail(self, run: ResearchRun, error: str) -> None:
        logger.error("research run %d: %s", run.pk, error)
        await sync_to_async(services.run_finish)(
            run_id=run.pk, worker=self.id, state=State.FAILED, error=error
        )

    async def _watch(self, run: ResearchRun, child, progress_file: Path) -> str:
        """Waits for the child, renewing the lease and storing its progress every heartbeat.
        "exited", or why it was killed: "cancel", "lost", "stop"."""
        stop_wait = asyncio.ensure_future(self.stopping.wait())
        exited = asyncio.ensure_future(child.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {exited, stop_wait},
                    timeout=self.heartbeat_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if exited in done:
                    return "exited"
                if stop_wait in done:
                    await self._kill(child)
                    return "stop"
                verdict = await sync_to_async(services.run_heartbeat)(
                    run_id=run.pk, worker=self.id, progress=_read_progress(progress_file)
                )
                if verdict != "ok":
                    await self._kill(child)
                    return verdict
        finally:
            stop_wait.cancel()
            exited.cancel()

    async def _kill(self, child) -> None:
        if child.returncode is not None:
            return
        child.terminate()
        try:
            await asyncio.wait_for(child.wait(), timeout=self.kill_grace_s)
        except TimeoutError:
            child.kill()
            await child.wait()
