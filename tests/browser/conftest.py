"""A real stack for the browser tests, started once per module: uvicorn (ASGI: pages, REST API,
WebSockets), the engine worker, the recorder and the bridge, on a fresh SQLite file and a Redis
key prefix of its own; and the system's Chromium driven by Playwright.

Chromium comes from the Debian packages (`make py-test` installs it when missing: Playwright's own
browser download does not work offline); the charting libraries from npm (static/vendor/).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from exchange.protocol.keys import key

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORDS = {"admin": "admin-browser-pass", "demo": "demo-browser-pass"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    prefix: str
    logs: Path

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{args}: {result.stderr[-3000:]}"
        return result.stdout

    def token(self, username: str, *, cash: str = "10000000") -> str:
        """A bearer token of a (new) user with plenty of cash, for orders the test submits."""
        code = (
            "from decimal import Decimal\n"
            "from django.contrib.auth import get_user_model\n"
            "from exchange.services import account_for_user, api_token_create\n"
            f"user, _ = get_user_model().objects.get_or_create(username={username!r})\n"
            "account = account_for_user(user)\n"
            f"account.cash = Decimal({cash!r}); account.save()\n"
            "print(api_token_create(user=user, name='browser-test')[1])\n"
        )
        return self.manage("shell", "-c", code).strip().splitlines()[-1]

    def api(self, token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{self.url}/api/v1/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")


def _wait_http(url: str, processes: dict, logs: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                log = (logs / f"{name}.log").read_text()[-3000:]
                pytest.fail(f"{name} exited with {process.returncode}:\n{log}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    pytest.fail(f"the web server did not answer at {url}")


def _wait_ready(stack: Stack, processes: dict, symbols: list[str], timeout: float = 90) -> None:
    """Until the stack can serve a test: `/readyz` answers 200 (an engine has taken charge of
    every instrument) and the bridge has written each market's snapshot. Tests that start
    earlier would race the processes' start-up rather than test the pages."""
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    snapshots = [key("ws", symbol, prefix=stack.prefix) for symbol in symbols]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for name, process in processes.items():
                if process.poll() is not None:
                    log = (stack.logs / f"{name}.log").read_text()[-3000:]
                    pytest.fail(f"{name} exited with {process.returncode}:\n{log}")
            try:
                with urllib.request.urlopen(f"{stack.url}/readyz", timeout=2) as response:
                    ready = response.status == 200
            except (urllib.error.URLError, OSError):
                ready = False
            if ready and client.exists(*snapshots) == len(snapshots):
                return
            time.sleep(0.3)
    finally:
        client.close()
    pytest.fail(f"the stack was not ready after {timeout} s (logs: {stack.logs})")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (scripts/ensure_chromium.sh)")
    if not (ROOT / "static" / "vendor" / ".installed").exists():
        subprocess.run([str(ROOT / "scripts" / "web_assets.sh")], check=True, cwd=ROOT)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    work = tmp_path_factory.mktemp("stack")
    prefix = f"browser-{uuid.uuid4().hex[:10]}"
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
        REDIS_URL=redis_url,
        FLASHBOOK_REDIS_PREFIX=prefix,
        FLASHBOOK_ENV_FILE="",
        DEBUG="1",
        SECRET_KEY="browser-tests-only",
        FLASHBOOK_ADMIN_PASSWORD=PASSWORDS["admin"],
        FLASHBOOK_DEMO_PASSWORD=PASSWORDS["demo"],
        LOG_LEVEL="WARNING",
    )
    stack = Stack(url=f"http://127.0.0.1:{port}", env=env, prefix=prefix, logs=work)
    stack.manage("migrate", "--no-input")
    stack.manage("seed_demo")
    commands = {
        "web": [
            sys.executable,
            "-m",
            "uvicorn",
            "flashbook_site.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        "engine": [sys.executable, "manage.py", "run_engine"],
        "recorder": [sys.executable, "manage.py", "run_recorder"],
        "bridge": [sys.executable, "manage.py", "run_bridge"],
    }
    processes = {}
    for name, command in commands.items():
        with open(work / f"{name}.log", "wb") as log:
            processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
    try:
        _wait_http(f"{stack.url}/login/", processes, work)
        _wait_ready(stack, processes, ["ACME"])
        yield stack
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])
        client.close()


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an event loop in this thread; Django is not used in-process here.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


def login(browser, stack: Stack, username: str, **context_options):
    context = browser.new_context(base_url=stack.url, **context_options)
    page = context.new_page()
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.url}/")
    return page
