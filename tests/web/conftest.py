"""Fixtures of the WebSocket tests: a real Redis under a key prefix of each test's own (the
channel layer's keys too; all removed afterwards), a database other threads can see (the
consumers and the bridge reach it through sync_to_async), users and an instrument."""

import os
import uuid

import pytest
import redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis answers at {url}: {exc}")
    return url


@pytest.fixture(autouse=True)
def redis_prefix(settings, redis_url):
    prefix = f"webtest-{uuid.uuid4().hex[:12]}"
    settings.REDIS_URL = redis_url
    settings.FLASHBOOK_REDIS_PREFIX = prefix
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": redis_url, "socket_timeout": 15}],
                "prefix": f"{prefix}:asgi",
                "capacity": 500,
            },
        }
    }
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.unlink(*keys[start : start + 500])
    client.close()


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()
