"""``make bench-sim``: the research simulator on the RMSC04-sized preset over a full 6.5-hour day.

Messages are LOBSTER message rows (what a researcher gets: new orders, cancellations, executions,
halt indicators); the time is the simulation's own loop, LOBSTER and trade files written as it
goes (the realism report is not timed). Runs the day ``RUNS`` times (default 3, same seed: the
work is identical, so the spread is the machine's) and reports the median. Prints one JSON line
and writes it to ``bench/results/sim.json``.

    python bench/bench_sim.py [RUNS]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashbook_site.settings")

from agents.research import preset, simulate  # noqa: E402

TARGET = 60_000
SEED = 1


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    config = preset("rmsc04")
    walls, cpus, messages = [], [], None
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-sim-") as out:
            result = simulate(config, SEED, out, report=False)
        data = result.data
        if messages is not None and data.messages != messages:
            raise SystemExit("the same seed gave a different number of messages")
        messages = data.messages
        walls.append(data.wall_s)
        cpus.append(data.cpu_s)
        print(
            f"run {i + 1}/{runs}: {data.messages:,} messages, {data.trades:,} trades, "
            f"{data.wall_s:.1f} s wall ({data.messages / data.wall_s:,.0f} msgs/s), "
            f"{data.cpu_s:.1f} s CPU ({data.messages / data.cpu_s:,.0f} msgs/s)",
            file=sys.stderr,
        )
    wall = statistics.median(walls)
    result = {
        "bench": "sim",
        "messages": messages,
        "wall_s": round(wall, 2),
        "msgs_per_s": round(messages / wall),
        "runs_wall_s": [round(w, 2) for w in walls],
        "cpu_s": round(statistics.median(cpus), 2),
        "msgs_per_cpu_s": round(messages / statistics.median(cpus)),
        "target_msgs_per_s": TARGET,
        "ratio_to_target": round(messages / wall / TARGET, 3),
        "preset": "rmsc04",
        "seed": SEED,
        "agents": config.agent_count,
        "session": "09:30-16:00",
    }
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "sim.json").write_text(json.dumps(result) + "\n")
    print(json.dumps({k: result[k] for k in ("bench", "messages", "wall_s", "msgs_per_s")}))


if __name__ == "__main__":
    main()
