"""How connections that arrive together spread over the web server's workers (issue 16).

    python bench/bench_spread.py [--connections 40] [--rounds 5] [--workers 2]

Starts the web server as production runs it (gunicorn, deploy/gunicorn.conf.py: uvicorn workers,
`reuse_port`), then the same with `reuse_port` off (one listening socket shared by the workers, as
gunicorn's default and `uvicorn --workers` give), each on a free port with DEBUG on and an SQLite
file (nothing but /healthz is asked). Each round opens the connections together, sends one
request on each, and counts the established connections each worker holds (from /proc), then
closes them. Prints one line per server: the connections per worker of each round, fewest first.
Linux only (/proc, SO_REUSEPORT).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stack import children, connections_held, free_port, http_status

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deploy" / "gunicorn.conf.py"
# The production config with one change: the workers share the master's listening socket.
SHARED_SOCKET_CONFIG = f"""
import runpy
globals().update(runpy.run_path({str(CONFIG)!r}))
reuse_port = False
"""


def measure(config: str, args: argparse.Namespace, tmp: Path) -> list[list[int]]:
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flashbook_site.settings",
        "FLASHBOOK_ENV_FILE": str(tmp / "none.env"),
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
    }
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--config", config),
            *("--bind", f"127.0.0.1:{port}", "--workers", str(args.workers)),
            *("--log-level", "warning"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    http_status(sock)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not come up") from None
                time.sleep(0.3)
        time.sleep(3)  # every worker started and listening
        workers = children(server.pid)
        rounds = []
        for _ in range(args.rounds):
            connections = [
                socket.create_connection(("127.0.0.1", port)) for _ in range(args.connections)
            ]
            try:
                for sock in connections:
                    http_status(sock)
                rounds.append(sorted(connections_held(port, workers)))
            finally:
                for sock in connections:
                    sock.close()
            time.sleep(0.5)
        return rounds
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fbbench-spread-") as name:
        tmp = Path(name)
        shared = tmp / "shared_socket.conf.py"
        shared.write_text(SHARED_SOCKET_CONFIG)
        for label, config in (
            ("reuse_port (production)", str(CONFIG)),
            ("one shared socket", str(shared)),
        ):
            print(f"{label:<24} {measure(config, args, tmp)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
