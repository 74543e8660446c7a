"""Running the database to a migration and back, for the tests of migrations that move data."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets):
    """Migrates to `targets` ([(app, migration)]) and returns the apps as they are there."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest():
    """The newest migration of every app: where a test puts the database back."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes()
