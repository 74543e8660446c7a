"""Fixtures of every test."""

import pytest


@pytest.fixture(autouse=True)
def _fresh_gateway_caches():
    """The gateway's caches of instruments and account standing live as long as the process; rows
    of one test (their keys reused by the next) must not be served to another."""
    from exchange.orders import gateway

    gateway.clear_caches()
    yield
    gateway.clear_caches()
