"""Fixtures of the API tests: a real Redis under a key prefix of each test's own (removed after
the test), an instrument, users with API tokens."""

import uuid

import pytest
import redis
from rest_framework.test import APIClient

from .support import make_instrument, make_user, token_client


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
