"""Fixtures of the deployment tests: the recorder tests' real Redis under a key prefix of each
test's own (`redis_prefix`, `r`) and their database that subprocesses can open (`file_db`: an
SQLite file, or the PostgreSQL test database)."""

from tests.recorder.conftest import (  # noqa: F401 - fixtures, registered by importing them
    _migrated_template,
    file_db,
    r,
    redis_prefix,
    redis_url,
)
