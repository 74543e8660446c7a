"""``simulate verify DIR``: re-run a run from its manifest and check every byte of every file.

Two checks, both against the manifest's SHA-256 digests:

1. the files in ``DIR`` — a file edited, truncated or removed since the run is named;
2. a fresh run, from the manifest's configuration, seeds and output choice, into a temporary
   directory — a file the code no longer makes the same is named, with the first byte where it
   parts from the file in ``DIR``. A file the re-run writes that the manifest does not list is a
   difference too.

A different commit than the manifest's is not an error in itself (the point is to find out
whether newer code still makes the same bytes); it is said in the notes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .branches import simulate_fork
from .config import config_from_mapping
from .fork import Branch, ForkStart, read_capture
from .manifest import MANIFEST_NAME, code_version, file_digest, read_manifest
from .outputs import OutputChoice
from .run import simulate, simulate_seeds

__all__ = ["VerifyResult", "first_difference", "verify_run"]


@dataclass
class VerifyResult:
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def first_difference(a: Path, b: Path, chunk: int = 1 << 20) -> int | None:
    """The offset of the first byte where two files differ (the shorter one's length when one is
    a prefix of the other); ``None`` when they are equal."""
    offset = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(chunk), fb.read(chunk)
            if x != y:
                n = min(len(x), len(y))
                same = next((i for i in range(n) if x[i] != y[i]), n)
                return offset + same
            if not x:
                return None
            offset += len(x)


def _rerun(manifest: dict, out: Path, target: Path, progress) -> None:
    config = config_from_mapping(manifest["config"])
    outputs = OutputChoice.from_dict(manifest["outputs"])
    seeds = [int(s) for s in manifest["seeds"]]
    fork = None
    if (forked := manifest.get("fork")) is not None:
        # A fork re-runs from its capture, kept in the run's directory (its digest is checked
        # with the other files).
        capture = read_capture(out / forked["file"])
        if "branches" in forked:
            branches = [Branch.from_dict(b) for b in forked["branches"]]
            simulate_fork(capture, branches, seeds, target, outputs=outputs, progress=progress)
            return
        fork = ForkStart.of(capture, Branch.from_dict(forked["branch"]))
        config = fork.config
    if manifest.get("pooled"):
        simulate_seeds(config, seeds, target, outputs=outputs, progress=progress, fork=fork)
    else:
        tick = None if progress is None else (lambda t, m: progress(seeds[0], t, m))
        simulate(config, seeds[0], target, outputs=outputs, progress=tick, fork=fork)


def _check_file(name: str, digest: str, out: Path, again_dir: Path) -> list[str]:
    """What is wrong with one file: in ``out`` against its digest, then the re-run's."""
    problems = []
    path, again = out / name, again_dir / name
    rerun_ok = again.is_file() and file_digest(again) == digest

    def where() -> str:
        offset = first_difference(path, again) if path.is_file() and again.is_file() else None
        return "" if offset is None else f" (first different byte at offset {offset})"

    if not path.is_file():
        problems.append(f"{name}: missing from {out}")
    elif file_digest(path) != digest:
        # Against a correct re-run, the offset says where the file was changed.
        problems.append(
            f"{name}: differs from its digest in the manifest{where() if rerun_ok else ''}"
        )
    if not again.is_file():
        problems.append(f"{name}: the re-run did not write it")
    elif not rerun_ok:
        problems.append(f"{name}: the re-run's file differs from the manifest{where()}")
    return problems


def verify_run(out_dir: str | Path, *, progress=None) -> VerifyResult:
    """Checks ``out_dir`` against its manifest and a re-run; ``ValueError`` if there is no
    readable manifest."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    digests: dict[str, str] = manifest["files"]
    result = VerifyResult(checked=len(digests))

    recorded, current = manifest.get("code", {}), code_version()
    if recorded.get("git_commit") != current["git_commit"]:
        result.notes.append(
            f"the run was made at commit {recorded.get('git_commit')}, this is "
            f"{current['git_commit']}"
        )
    if recorded.get("libraries") != current["libraries"]:
        result.notes.append(
            f"library versions differ: run {recorded.get('libraries')}, now {current['libraries']}"
        )

    with tempfile.TemporaryDirectory(prefix="flashbook-verify-") as scratch:
        again_dir = Path(scratch) / "run"
        _rerun(manifest, out, again_dir, progress)
        for name, digest in digests.items():
            result.problems += _check_file(name, digest, out, again_dir)
        extra = sorted(
            str(p.relative_to(again_dir))
            for p in again_dir.rglob("*")
            if p.is_file() and p.name != MANIFEST_NAME
        )
        result.problems += [
            f"{name}: written by the re-run but not in the manifest"
            for name in extra
            if name not in digests
        ]
    return result
