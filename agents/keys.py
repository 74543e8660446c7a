"""The agents' side of Redis: key names (all under `FLASHBOOK_REDIS_PREFIX`, see
`docs/protocol.md`, "Simulation and agents") and a client that decodes answers to `str`."""

from functools import cache

import redis
import redis.cluster
from django.conf import settings

from exchange import redis_clients


def _name(*parts: str) -> str:
    return ":".join((settings.FLASHBOOK_REDIS_PREFIX, *parts))


def sim_state() -> str:
    """Hash: `state` (running | paused), `changed_at`, `last_shock` (JSON), `reset_pending`."""
    return _name("sim", "state")


def sim_channel() -> str:
    """Pub/sub: `{"type": "sim", ...sim_status()}` after every change of the simulation state."""
    return _name("sim")


def sim_events() -> str:
    """Stream of the simulation's events for people (`kind`: pause | resume | reset | shock,
    `at`, and a shock's `symbol` and `pct`): the dashboard's chart marks them."""
    return _name("sim", "events")


def sim_shocks() -> str:
    """Stream of shocks (`symbol`, `pct`, `at`): the runners apply each exactly once."""
    return _name("sim", "shocks")


def sim_lock() -> str:
    """Lock serializing changes of the simulation state (pause, resume, reset, shock)."""
    return _name("sim", "lock")


def agent_status() -> str:
    """Hash: agent name -> JSON status published by the runner that runs it."""
    return _name("agents", "status")


def runners() -> str:
    """Hash: runner id -> JSON heartbeat (`pid`, `ts_ms`, `agents`, `symbols`)."""
    return _name("agents", "runners")


def fundamentals() -> str:
    """Hash: symbol -> JSON fundamental value state, so a restarted runner carries on."""
    return _name("agents", "fundamental")


@cache
def _client(url: str) -> redis.Redis | redis.cluster.RedisCluster:
    return redis_clients.client(
        url, decode_responses=True, socket_timeout=10, socket_connect_timeout=2
    )


def client() -> redis.Redis | redis.cluster.RedisCluster:
    return _client(settings.REDIS_URL)
