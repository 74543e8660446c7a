"""The web server (`deploy/gunicorn.conf.py`): gunicorn with uvicorn workers, each listening on a
socket of its own. Connections that arrive together spread over the workers; a worker that dies is
replaced; SIGTERM stops all; a worker whose master is killed outright stops by itself."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.stack import connections_held, free_port, http_status

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "gunicorn.conf.py"


def workers_of(pid: int) -> list[int]:
    """The worker processes of the gunicorn master `pid` (its only children here)."""
    workers = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if alive(int(child)):
            workers.append(int(child))
    return workers


def serving_pids(port: int, candidates: list[int]) -> dict[int, int]:
    """How many established connections to `port` each candidate process holds."""
    return dict(zip(candidates, connections_held(port, candidates), strict=True))


def alive(pid: int) -> bool:
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flashbook_site.settings",
        "FLASHBOOK_ENV_FILE": str(tmp_path / "none.env"),
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "LOG_FORMAT": "json",  # as the image runs it
    }
    log_path = tmp_path / "serve.log"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--config", str(CONFIG)),
            *("--bind", f"127.0.0.1:{port}", "--workers", "2", "--graceful-timeout", "5"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if http_status(sock).endswith(b"200 OK") and len(workers_of(process.pid)) == 2:
                    break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(log_path.read_text())
    time.sleep(1.0)  # the second worker listening too
    workers = workers_of(process.pid)
    yield process, port, log_path
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


def test_connections_that_arrive_together_spread_over_the_workers(server):
    process, port, _ = server
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    try:
        assert all(http_status(sock).endswith(b"200 OK") for sock in connections)
        counts = serving_pids(port, workers_of(process.pid))
        # By the hash of 40 source ports: each worker gets some (all on one: odds of 2^-39).
        # One shared socket (no reuse_port) gives 3/37 here most of the time.
        assert sum(counts.values()) == 40
        assert min(counts.values()) >= 5, counts
    finally:
        for sock in connections:
            sock.close()


def test_a_worker_that_dies_is_replaced_and_sigterm_stops_everything(server):
    process, port, log_path = server
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
            assert all(http_status(sock).endswith(b"200 OK") for sock in connections)
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
    # LOG_FORMAT=json: every line the master and the workers wrote is one JSON object.
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    components = {line["component"] for line in lines}
    assert {"gunicorn.error", "uvicorn.error"} <= components
    assert any("Shutting down: Master" in line["msg"] for line in lines)


def test_workers_stop_when_the_master_is_killed_outright(server):
    """uvicorn's worker does not watch its master; the config's `post_fork` hook does, every
    half second, and stops the worker gracefully: gone within a couple of seconds."""
    process, port, _ = server
    workers = workers_of(process.pid)
    process.kill()  # SIGKILL: no chance to stop the workers itself
    process.wait()
    killed = time.monotonic()
    while any(alive(pid) for pid in workers) and time.monotonic() < killed + 5:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def gunicorn_settings(monkeypatch, *argv: str, log_format: str = "json", config=True):
    """The settings gunicorn reads from the config file and a command line (nothing started)."""
    from gunicorn.app.wsgiapp import WSGIApplication

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("LOG_FORMAT", log_format)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # gunicorn puts its chdir first
    config_option = ["--config", str(CONFIG)] if config else []
    monkeypatch.setattr(sys, "argv", ["gunicorn", *config_option, *argv])
    return WSGIApplication().cfg


def test_the_config_file_sets_the_server_up(monkeypatch):
    monkeypatch.setenv("WEB_WORKERS", "3")
    cfg = gunicorn_settings(monkeypatch)
    assert cfg.wsgi_app == "flashbook_site.asgi:application"
    assert cfg.worker_class_str == "uvicorn_worker.UvicornWorker"
    assert (cfg.reuse_port, cfg.workers, cfg.address) == (True, 3, [("127.0.0.1", 8000)])
    assert (cfg.graceful_timeout, cfg.keepalive, cfg.accesslog) == (30, 5, None)
    assert cfg.control_socket_disable
    assert cfg.forwarded_allow_ips == ["127.0.0.1", "::1"]  # unless FORWARDED_ALLOW_IPS says
    # The worker class loads (uvicorn-worker installed) and hands uvicorn these settings.
    assert cfg.worker_class.__module__.startswith("uvicorn_worker")


def test_the_command_line_wins_over_the_config_file(monkeypatch):
    cfg = gunicorn_settings(
        monkeypatch, "--bind", "0.0.0.0:9000", "--workers", "4", "--forwarded-allow-ips", "*"
    )
    assert (cfg.address, cfg.workers, cfg.forwarded_allow_ips) == ([("0.0.0.0", 9000)], 4, ["*"])


def test_json_logs_use_the_projects_formatter_and_plain_logs_gunicorns(monkeypatch):
    config = gunicorn_settings(monkeypatch).logconfig_dict
    assert config["formatters"]["json"]["()"] == "flashbook_site.logs.JsonFormatter"
    assert config["loggers"]["gunicorn.error"]["handlers"] == ["default"]
    assert "gunicorn.access" not in config["loggers"]  # no access log
    assert gunicorn_settings(monkeypatch, log_format="plain").logconfig_dict == {}


def test_the_images_command_serves_every_address_behind_the_proxy(monkeypatch):
    dockerfile = (ROOT / "Dockerfile").read_text()
    shell, option, script = json.loads(re.search(r"^CMD (.*)$", dockerfile, re.MULTILINE)[1])
    assert (shell, option) == ("sh", "-c")
    assert re.search(r"^ENV .*LOG_FORMAT=json .*WEB_WORKERS=2", dockerfile, re.MULTILINE)
    command = shlex.split(script.replace("$PORT", "8000"))
    assert command[:2] == ["exec", "gunicorn"]
    monkeypatch.setenv("WEB_WORKERS", "2")
    cfg = gunicorn_settings(monkeypatch, *command[2:], config=False)
    assert cfg.address == [("0.0.0.0", 8000)] and cfg.forwarded_allow_ips == ["*"]
    assert cfg.reuse_port and cfg.workers == 2 and cfg.logconfig_dict  # the config file's
