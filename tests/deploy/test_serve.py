"""`python -m flashbook_site.serve`: uvicorn workers with a listening socket each. Connections
that arrive together spread over the workers; a worker that dies is replaced; SIGTERM stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flashbook_site import serve

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(sock: socket.socket, path: str = "/healthz") -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(4096)
    return answer.split(b"\r\n", 1)[0]


def workers_of(pid: int) -> list[int]:
    """The worker processes of the server `pid` (not multiprocessing's resource tracker)."""
    workers = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(int(child))
        except OSError:
            pass  # gone meanwhile
    return workers


def serving_pids(port: int, candidates: list[int]) -> dict[int, int]:
    """How many established connections to `port` each candidate process holds (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # ESTABLISHED
                inodes.add(fields[9])
    counts = {}
    for pid in candidates:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held += 1
        counts[pid] = held
    return counts


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flashbook_site.settings",
        "FLASHBOOK_ENV_FILE": str(tmp_path / "none.env"),
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "flashbook_site.serve", "--port", str(port), "--workers", "2"),
            *("--lifespan", "off", "--no-access-log", "--graceful-timeout", "5"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if get(sock).endswith(b"200 OK") and len(workers_of(process.pid)) == 2:
                    break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail((tmp_path / "serve.log").read_text())
    time.sleep(1.0)  # the second worker listening too
    workers = workers_of(process.pid)
    yield process, port
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in workers:  # never leave a worker behind, whatever the test did
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False


def test_connections_that_arrive_together_spread_over_the_workers(server):
    process, port = server
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    try:
        assert all(get(sock).endswith(b"200 OK") for sock in connections)
        counts = serving_pids(port, workers_of(process.pid))
        # By the hash of 40 source ports: each worker gets some (all on one: odds of 2^-39).
        assert sum(counts.values()) == 40
        assert min(counts.values()) >= 5, counts
    finally:
        for sock in connections:
            sock.close()


def test_a_worker_that_dies_is_replaced_and_sigterm_stops_everything(server):
    process, port = server
    first, second = workers_of(process.pid)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = workers_of(process.pid)
        if len(workers) == 2 and first not in workers:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no new worker: {workers_of(process.pid)}")
    replacement = (set(workers) - {second}).pop()
    # The replacement serves once it has started (Django imported, its socket bound): that takes
    # a second on a quiet machine and several on a loaded one, so ask until it does.
    deadline = time.monotonic() + 60
    while True:
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        try:
            assert all(get(sock).endswith(b"200 OK") for sock in connections)
            served = serving_pids(port, [replacement])[replacement]
        finally:
            for sock in connections:
                sock.close()
        if served > 0:
            break
        assert time.monotonic() < deadline, "the replacement worker never served a connection"
        time.sleep(0.5)

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert not alive(second) and not alive(replacement)


def test_workers_stop_when_the_supervisor_is_killed_outright(server):
    process, port = server
    workers = workers_of(process.pid)
    process.kill()  # SIGKILL: no chance to stop the workers itself
    process.wait()
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--port", "0"], "--port 0"), (["--workers", "0"], "--workers must be at least 1")],
)
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        serve.main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_options_become_uvicorn_settings():
    args = serve._parser().parse_args(
        ["--host", "0.0.0.0", "--port", "9000", "--forwarded-allow-ips", "*", "--no-access-log"]
    )
    options = serve.uvicorn_options(args)
    assert options["app"] == serve.APP
    assert (options["host"], options["port"], options["proxy_headers"]) == ("0.0.0.0", 9000, True)
    assert (options["forwarded_allow_ips"], options["access_log"]) == ("*", False)
    assert "log_config" not in options  # uvicorn's own logging unless a file is named
