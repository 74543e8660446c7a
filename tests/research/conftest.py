"""Fixtures of the research tests that fork a live market: the recorder tests' real Redis under a
key prefix of each test's own (`redis_prefix`, `r`) and a database subprocesses can open
(`file_db`), for the engine process whose book a fork captures."""

from tests.recorder.conftest import (  # noqa: F401 - fixtures, registered by importing them
    _migrated_template,
    file_db,
    r,
    redis_prefix,
    redis_url,
)
