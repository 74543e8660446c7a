"""Where Redis is — one server, or a Redis Cluster — and the one place Flashbook's Python processes
make their clients from it (`settings.REDIS_URL`).

`redis+cluster://[user:password@]host:port[,host:port...]` names a cluster by its seed nodes, the
convention the engine worker reads too (`engine_rs/src/connect.rs`, `docs/deploy.md`): the
client asks the first seed that answers for the cluster's layout and then sends each command to
the primary that serves its key's slot. Every other URL is one server, opened by redis-py exactly
as before.

On a cluster, what works differs from one server in three ways the callers must mind:

* a command with several keys (MGET, XREAD of several streams, a script) must have them all in
  one slot: keys of one symbol share its hash tag `{SYM}`, keys of different symbols or accounts
  do not (`by_slot` groups keys for one call per slot);
* a pipeline is split by redis-py into one per node (no MULTI/EXEC across slots);
* nothing is retried by the client: like the engine worker's, a command sent again after its
  node died may have run already (an XADD twice, a counter bumped twice), so a failover surfaces
  as an error the process handles as it handles a Redis restart.

The parts that cannot run on a cluster yet (the gateway's append scripts, the bridge and the
live WebSockets, the FIX acceptor: `docs/deploy.md`) call `require_single_server` — the processes
when they start, the gateway before it sends an order — so that a cluster URL stops them with one
clear message rather than a CROSSSLOT error per key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

CLUSTER_SCHEME = "redis+cluster://"

# What a cluster answers while a primary fails over (beside connection errors and timeouts):
# errors to wait out and retry, as a process retries a Redis that restarts.
FAILOVER_ERRORS = (
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)


@dataclass(frozen=True)
class ClusterTarget:
    """A cluster URL read: its seed nodes and the credentials that apply to every node."""

    seeds: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None


def parse_cluster(url: str) -> ClusterTarget | None:
    """The cluster a URL names, or None for one server. Refuses what `connect.rs` refuses: a
    database other than 0 (a cluster has only database 0), options, a seed that is not
    host:port."""
    if not url.startswith(CLUSTER_SCHEME):
        return None
    rest = url[len(CLUSTER_SCHEME) :]
    authority, _, path = rest.partition("/")
    if path not in ("", "0"):
        raise ImproperlyConfigured(
            f"{redacted(url)}: a database other than 0 (a Redis Cluster has only database 0)"
        )
    if "?" in authority or "#" in authority:
        raise ImproperlyConfigured(f"{redacted(url)}: options in a cluster URL (none are known)")
    # The credentials end at the last '@': a password may contain one.
    userinfo, at, hosts = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    seeds = []
    for node in hosts.split(","):
        host, _, port = node.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(
                f"{redacted(url)}: a seed node {node!r} that is not host:port"
            )
        seeds.append((host.strip("[]"), int(port)))
    return ClusterTarget(tuple(seeds), username, password)


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    _, at, hosts = rest.rpartition("@")
    return f"{scheme}{sep}***@{hosts}" if sep and at else url


def is_cluster(url: str | None = None) -> bool:
    return (url if url is not None else settings.REDIS_URL).startswith(CLUSTER_SCHEME)


def _cluster_options(target: ClusterTarget, retry, options: dict) -> dict:
    # No retries (the module's comment): a retry object that allows none.
    return {"username": target.username, "password": target.password, "retry": retry} | options


def client(url: str | None = None, **options) -> redis.Redis | redis.cluster.RedisCluster:
    """A synchronous client of the Redis `url` names (default `settings.REDIS_URL`); `options`
    (timeouts, decoding) are redis-py's, for either kind."""
    url = url if url is not None else settings.REDIS_URL
    target = parse_cluster(url)
    if target is None:
        return redis.Redis.from_url(url, **options)
    return redis.cluster.RedisCluster(
        startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in target.seeds],
        **_cluster_options(target, Retry(NoBackoff(), 0), options),
    )


def aclient(
    url: str | None = None, **options
) -> redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster:
    """An asyncio client of the Redis `url` names (default `settings.REDIS_URL`); it belongs to
    the event loop that first uses it."""
    url = url if url is not None else settings.REDIS_URL
    target = parse_cluster(url)
    if target is None:
        return redis.asyncio.Redis.from_url(url, **options)
    options.pop("connection_class", None)  # the packed connection is a single server's
    return redis.asyncio.cluster.RedisCluster(
        startup_nodes=[
            redis.asyncio.cluster.ClusterNode(host, port) for host, port in target.seeds
        ],
        **_cluster_options(target, AsyncRetry(NoBackoff(), 0), options),
    )


class ClusterUnsupported(ImproperlyConfigured):
    """A part of Flashbook that does not run on a Redis Cluster yet was given a cluster URL."""


def require_single_server(what: str, url: str | None = None) -> None:
    """Stops `what` at its start when Redis is a cluster, naming what it lacks there."""
    url = url if url is not None else settings.REDIS_URL
    if is_cluster(url):
        raise ClusterUnsupported(
            f"{what} does not run on a Redis Cluster yet (REDIS_URL={redacted(url)}): "
            "docs/deploy.md, 'On a Redis Cluster', says what does and the plan for the rest"
        )


def slot(key: str | bytes) -> int:
    """The cluster key slot of a key (its hash tag's, when it has one)."""
    return key_slot(key.encode() if isinstance(key, str) else key)


def by_slot(keys: Iterable[str]) -> dict[int, list[str]]:
    """The keys grouped by their slot, in their first appearance's order: one multi-key call per
    group crosses no slot. On one server the grouping is harmless (several calls instead of one),
    so callers that care about round trips group only on a cluster."""
    groups: dict[int, list[str]] = {}
    for name in keys:
        groups.setdefault(slot(name), []).append(name)
    return groups


def mget(client, names: list[str]) -> list:
    """MGET of keys that may be in several slots: one MGET on one server, redis-py's per-slot
    split on a cluster (not atomic across slots: each value is as of its own slot's read)."""
    if isinstance(client, redis.cluster.RedisCluster):
        return client.mget_nonatomic(names)
    return client.mget(names)
