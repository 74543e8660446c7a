"""A run's progress as a small JSON file another process reads (``simulate --progress-file``).

The research runs' worker (``run_research``) runs ``simulate`` as a child process and shows its
progress in the browser; it reads this file rather than parsing the progress bar. The file is
replaced atomically (written beside it, then renamed), so a reader never sees half of it, and at
most about once a second of wall time, so writing it costs the simulation nothing measurable.

``{"done_s": 300.0, "total_s": 900.0, "messages": 17712, "seed": 1, "runs_done": 0, "runs": 3}``:
simulated seconds done and in total (over every seed of ``--runs``), the messages written so far.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["ProgressFile"]


class ProgressFile:
    def __init__(self, path: str | Path, *, session_s: float, runs: int, every_s: float = 1.0):
        self.path = Path(path)
        self.session_s = session_s
        self.runs = runs
        self.every_s = every_s
        self.run_index: dict[int, int] = {}
        self.messages_before = 0
        self.last_messages = 0
        self.last_written = float("-inf")
        self.state = {"done_s": 0.0, "total_s": session_s * runs, "messages": 0}
        self._write()

    def update(self, seed: int, elapsed_ns: int, messages: int) -> None:
        """The simulator's progress callback (per seed: ``simulate_seeds``' signature)."""
        index = self.run_index.setdefault(seed, len(self.run_index))
        if index and messages < self.last_messages:  # a new seed counts its messages from 0
            self.messages_before += self.last_messages
        self.last_messages = messages
        self.state = {
            "done_s": round(index * self.session_s + elapsed_ns / 1e9, 3),
            "total_s": self.session_s * self.runs,
            "messages": self.messages_before + messages,
            "seed": seed,
            "runs_done": index,
            "runs": self.runs,
        }
        if time.monotonic() - self.last_written >= self.every_s:
            self._write()

    def close(self) -> None:
        """The last state, whenever the last write was."""
        self._write()

    def _write(self) -> None:
        self.last_written = time.monotonic()
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(self.state), encoding="utf-8")
        os.replace(partial, self.path)
