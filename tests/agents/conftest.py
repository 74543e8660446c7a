"""Fixtures of the agents tests: the recorder tests' real Redis under a key prefix of each
test's own (`redis_prefix`, `r`) and their SQLite file for tests that run the engine, the
recorder and the runner as subprocesses (`file_db`)."""

from tests.recorder.conftest import (  # noqa: F401 - fixtures, registered by importing them
    _migrated_template,
    file_db,
    r,
    redis_prefix,
    redis_url,
)
