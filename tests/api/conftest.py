"""Fixtures of the API tests: a real Redis under a key prefix of each test's own (removed after
the test), an instrument, users with API tokens, a real engine process."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from rest_framework.test import APIClient

from .support import make_instrument, make_user, token_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def redis_prefix(settings):
    prefix = f"fbtest-{uuid.uuid4().hex[:12]}"
    url = settings.REDIS_URL  # a test may point REDIS_URL elsewhere; clean up here
    settings.FLASHBOOK_REDIS_PREFIX = prefix
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"{prefix}:cache",
        }
    }
    # No engine runs in most tests: do not wait long for an answer that cannot come.
    settings.FLASHBOOK_ORDER_WAIT = 0.2
    yield prefix
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_client(settings):
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def instrument(db):
    return make_instrument()


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def staff(db):
    return make_user("operator", is_staff=True)


@pytest.fixture
def api(alice) -> APIClient:
    """Alice's client, authenticated with a bearer token."""
    return token_client(alice)


@pytest.fixture
def bob_api(bob) -> APIClient:
    return token_client(bob)


@pytest.fixture
def staff_api(staff) -> APIClient:
    return token_client(staff)


@pytest.fixture
def engine(settings, redis_prefix, redis_client):
    """A real engine process serving ACME under the test's key prefix, and the gateway waiting
    up to 5 s for its outcomes."""
    env = {
        **os.environ,
        "REDIS_URL": settings.REDIS_URL,
        "FLASHBOOK_REDIS_PREFIX": redis_prefix,
        "DEBUG": "1",
        "FLASHBOOK_ENV_FILE": "",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_engine", "--symbols", "ACME"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    status_key = f"{redis_prefix}:status:{{ACME}}"
    deadline = time.monotonic() + 20
    while not redis_client.exists(status_key):
        if process.poll() is not None:
            raise AssertionError(f"the engine exited: {process.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            break  # it may write its status only after its first batch; orders still queue
        time.sleep(0.05)
    settings.FLASHBOOK_ORDER_WAIT = 5.0
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
