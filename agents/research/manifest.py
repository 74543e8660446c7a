"""``manifest.json``: what it takes to make a run's files again, and what they must be.

A run's files are a pure function of the code, the configuration and the seed(s). The manifest
records all three — the code as the git commit it ran from (when the code is a git checkout),
the package's and the engine crate's versions, and the versions of the libraries that shape bytes
(numpy, matplotlib for the PNGs, pyarrow for the Parquet files) — with the output choice and the
SHA-256 of every file written. ``simulate verify DIR`` (``verify.py``) re-runs from it.

No wall-clock time goes in: two runs of one configuration and seed write the same manifest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

__all__ = [
    "MANIFEST_NAME",
    "code_version",
    "file_digest",
    "read_manifest",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
#: The repository the code runs from (agents/research/manifest.py → the checkout's root).
_ROOT = Path(__file__).resolve().parents[2]
_LIBRARIES = ("numpy", "matplotlib", "pyarrow")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def code_version() -> dict:
    """The commit (``None`` outside a git checkout, e.g. an installed wheel) and whether
    tracked files had uncommitted changes — a dirty tree's commit does not name the code that
    ran — then the versions, which are all an installed package has to go by. Read once per
    process: the code a process runs is what it imported, whatever is committed meanwhile
    (``simulate`` reads it as a run starts)."""
    from flashbook_engine import __version__ as engine_version

    commit = _git("rev-parse", "HEAD")
    dirty = None
    if commit is not None:
        status = _git("status", "--porcelain", "--untracked-files=no")
        dirty = bool(status) if status is not None else None
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "package": _version("flashbook"),
        "engine_crate": engine_version,
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in _LIBRARIES},
    }


def file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_manifest(
    out_dir: Path,
    *,
    config: dict,
    seeds: list[int],
    outputs: dict,
    files: Iterable[str],
    fork: dict | None = None,
) -> Path:
    """Digests ``files`` (paths relative to ``out_dir``) and writes ``out_dir/manifest.json``.
    A fork's run names its capture file and branches (``fork``), which a re-run starts from."""
    digests = {name: file_digest(out_dir / name) for name in sorted(set(files))}
    manifest = {
        "manifest_version": FORMAT_VERSION,
        "code": code_version(),
        # One seed: a run in out_dir; several: seed-N directories pooled in out_dir.
        "seeds": seeds,
        "pooled": len(seeds) > 1,
        "outputs": outputs,
        "config": config,
        "files": digests,
    }
    if fork is not None:
        manifest["fork"] = fork
    path = out_dir / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(out_dir: Path) -> dict:
    """The manifest in ``out_dir``; ``ValueError`` when missing or not one."""
    path = Path(out_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no manifest (was the run written by this version?)") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: not a run manifest")
    missing = [k for k in ("seeds", "outputs", "config", "files") if k not in manifest]
    if missing:
        raise ValueError(f"{path}: not a run manifest (missing {', '.join(missing)})")
    if manifest.get("manifest_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: manifest version {manifest.get('manifest_version')!r} unknown")
    return manifest
