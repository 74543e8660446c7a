"""A real stack for the browser tests, started once per module as `make run` starts it (the
Procfile's web, engine, recorder and bridge roles, `bench.stack.start_stack`, the benchmarks'
way too) on a fresh SQLite file and a Redis key prefix of its own; and the system's Chromium
driven by Playwright.

Chromium comes from the Debian packages (`make py-test` installs it when missing: Playwright's own
browser download does not work offline); the charting libraries from npm (static/vendor/).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from bench.stack import LoopbackStack, start_stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORDS = {"admin": "admin-browser-pass", "demo": "demo-browser-pass"}


class Stack(LoopbackStack):
    """The stack, and what the tests do through it: tokens and REST calls."""

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

    def place(self, token, side, price, quantity, symbol="ACME", **extra) -> dict:
        """A limit order through the REST API, which must be accepted."""
        body = {"symbol": symbol, "side": side, "price": price, "quantity": quantity, **extra}
        status, answer = self.api(token, "POST", "orders/", body)
        assert status in (200, 201), answer
        return answer

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


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    started = start_browser_stack(tmp_path_factory, ["web", "engine", "recorder", "bridge"])
    try:
        yield started
    finally:
        started.stop()


def start_browser_stack(tmp_path_factory, roles: list[str], env: dict | None = None) -> Stack:
    """The Procfile's `roles` on a fresh SQLite file and Redis prefix, the demo seeded (its
    instruments, logins and — when the agents role runs — agents); `env`: more settings."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (scripts/ensure_chromium.sh)")
    if not (ROOT / "static" / "vendor" / ".installed").exists():
        subprocess.run([str(ROOT / "scripts" / "web_assets.sh")], check=True, cwd=ROOT)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    # Tests that started before every process is ready would race the start-up, not test pages.
    return start_stack(
        roles,
        work=tmp_path_factory.mktemp("stack"),
        redis_url=redis_url,
        env={
            "SECRET_KEY": "browser-tests-only",
            "FLASHBOOK_ADMIN_PASSWORD": PASSWORDS["admin"],
            "FLASHBOOK_DEMO_PASSWORD": PASSWORDS["demo"],
            "LOG_LEVEL": "WARNING",
        }
        | (env or {}),
        setup=[["seed_demo"]],
        ready_symbols=["ACME"],
        stack_class=Stack,
    )


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


@pytest.fixture(scope="module")
def trader(stack):
    """Another participant's token: it makes the market the browser watches."""
    return stack.token("market-maker")
