"""Reads of the research runs: the list, one run's progress, its report (the facts, the plots,
the files of its manifest, read from its directory) and the files it may serve."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from django.db.models import QuerySet

from agents.models import ResearchRun
from agents.research.manifest import MANIFEST_NAME
from exchange.errors import NotFound


def run_list() -> QuerySet[ResearchRun]:
    return ResearchRun.objects.select_related("queued_by")


def run_get(run_id: int) -> ResearchRun:
    run = ResearchRun.objects.select_related("queued_by").filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No research run {run_id}.")
    return run


def run_progress(run: ResearchRun) -> dict:
    """What the run's page polls: its state and how far it is."""
    percent = 100.0 * run.done_s / run.total_s if run.total_s > 0 else 0.0
    return {
        "id": run.pk,
        "state": run.state,
        "finished": run.finished,
        "cancel_requested": run.cancel_requested,
        # Whole seconds and percent: the page shows them as they are, server- or script-written.
        "done_s": int(run.done_s),
        "total_s": int(run.total_s),
        "percent": int(min(percent, 100.0)),
        "messages": run.messages,
        "attempts": run.attempts,
        "error": run.error,
    }


def run_home(run: ResearchRun) -> Path:
    """The run's own directory: its files (`out/`), the simulation's log, its configuration."""
    return Path(run.out_dir).parent


def run_log_path(run: ResearchRun) -> Path:
    return run_home(run) / "simulate.log"


@dataclass
class Fact:
    name: str
    #: None: the run cannot measure it (the impact law without execution agents).
    met: bool | None
    test: str
    value: str
    deeper: bool = False


@dataclass
class RunFile:
    path: str
    size: int
    sha256: str


@dataclass
class RunReport:
    pooled: bool
    seeds: list[int]
    facts: list[Fact] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    files: list[RunFile] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    has_html_report: bool = False


def _value_text(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value_text(v)}" for k, v in value.items())
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _met(fact: dict) -> bool | None:
    return None if fact.get("met") is None else bool(fact["met"])


def _facts(facts: dict) -> list[Fact]:
    rows = [
        Fact(f["name"], _met(f), f.get("test", ""), _value_text(f.get("value")))
        for f in facts.get("facts", [])
    ]
    rows += [
        Fact(f["name"], _met(f), f.get("test", ""), _value_text(f.get("value")), True)
        for f in facts.get("deeper", {}).get("facts", [])
    ]
    return rows


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_report(run: ResearchRun) -> RunReport | None:
    """The report of a run that wrote its manifest (None before that): its facts — the run's
    own (`summary.json`) or pooled over its seeds (`facts.json`), the deeper ones marked — its
    plots, and every file of its manifest with its size and digest."""
    out = Path(run.out_dir)
    manifest = _read_json(out / MANIFEST_NAME)
    if manifest is None:
        return None
    report = RunReport(pooled=bool(manifest.get("pooled")), seeds=list(manifest.get("seeds", [])))
    if report.pooled:
        facts = _read_json(out / "facts.json") or {}
    else:
        summary = _read_json(out / "summary.json") or {}
        facts = summary.get("stylized_facts", {})
        report.counts = summary.get("counts", {})
    report.facts = _facts(facts)
    listed = dict(manifest.get("files", {}))
    for path, digest in sorted(listed.items()):
        try:
            size = (out / path).stat().st_size
        except OSError:
            continue  # listed but gone: nothing to serve
        report.files.append(RunFile(path, size, digest))
    report.files.append(RunFile(MANIFEST_NAME, (out / MANIFEST_NAME).stat().st_size, ""))
    report.plots = [f.path for f in report.files if f.path.startswith("plots/")]
    report.plots = [p for p in report.plots if p.endswith(".png")]
    report.has_html_report = "report.html" in listed
    return report


def run_file(run: ResearchRun, relative: str) -> Path:
    """A file of the run's directory, by its path inside it. Anything that resolves outside the
    directory (``..``, an absolute path, a symbolic link out of it) is not found, as is a
    directory."""
    root = Path(run.out_dir).resolve()
    try:
        path = (root / relative).resolve()
    except (OSError, ValueError):
        raise NotFound("No such file in this run.") from None
    if not path.is_relative_to(root) or path == root or not path.is_file():
        raise NotFound("No such file in this run.")
    return path
