#!/usr/bin/env python3
"""Start the whole Flashbook stack on one machine and keep it in the foreground.

One process per role, as in a deployment: the ASGI web server, the engine worker, the recorder
(and whatever `ROLES` lists). Their output is interleaved with a role prefix. If one of them exits,
the others are stopped too, so a broken stack never looks healthy; Ctrl-C stops everything.

Used by `make run`; it expects the set-up (virtualenv, migrations, demo data) to be done.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def roles(port: int) -> dict[str, list[str]]:
    manage = [PYTHON, "manage.py"]
    return {
        "web": [
            PYTHON,
            "-m",
            "uvicorn",
            "flashbook_site.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        "engine": [*manage, "run_engine"],
        "recorder": [*manage, "run_recorder"],
        "bridge": [*manage, "run_bridge"],
        "agents": [*manage, "run_agents"],
    }


def pump(name: str, stream, lock: threading.Lock) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip()
        with lock:
            print(f"{name:>9} | {line}", flush=True)


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    lock = threading.Lock()
    processes: dict[str, subprocess.Popen] = {}
    for name, command in roles(port).items():
        processes[name] = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        threading.Thread(
            target=pump, args=(name, processes[name].stdout, lock), daemon=True
        ).start()

    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, process in processes.items():
            if process.poll() is not None:
                with lock:
                    print(f"{name} exited with code {process.returncode}; stopping the stack.")
                exit_code = process.returncode or 1
                stopping = True
                break
        time.sleep(0.3)

    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
