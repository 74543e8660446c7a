"""Fixtures of the Redis Cluster tests: clusters of real `redis-server` processes that each test
starts for itself (`harness.LocalCluster`) and that are torn down after it, passed or failed."""

from __future__ import annotations

import pytest

from tests.cluster.harness import LocalCluster, binaries_missing
from tests.recorder.conftest import (  # noqa: F401 - fixtures, registered by importing them
    _migrated_template,
    file_db,
)


@pytest.fixture
def cluster_factory(tmp_path_factory):
    """`cluster_factory(appendfsync="always")` starts a cluster (three primaries, a replica each)
    in a temporary directory; every cluster started is stopped and its files removed afterwards."""
    missing = binaries_missing()
    if missing:
        pytest.skip(missing)
    started: list[LocalCluster] = []

    def start(**options) -> LocalCluster:
        cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"), **options)
        started.append(cluster)
        return cluster.start()

    try:
        yield start
    finally:
        for cluster in started:
            cluster.stop()


@pytest.fixture
def redis_cluster(cluster_factory) -> LocalCluster:
    """A cluster with Redis's default durability (`appendfsync everysec`)."""
    return cluster_factory()
