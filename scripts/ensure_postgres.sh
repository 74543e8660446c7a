#!/usr/bin/env bash
# Print the URL of a PostgreSQL server the tests may use, or nothing (diagnostics on stderr).
#
#   scripts/ensure_postgres.sh [PYTHON]
#
# TEST_POSTGRES_URL when set (it must answer: a set URL that fails is an error); otherwise
# postgres://postgres@127.0.0.1:5432/postgres, but only if a server answers there. pytest-django
# creates its test database next to the one named in the URL, so the role needs CREATEDB.
# Unlike Redis, a missing PostgreSQL is not started: the PostgreSQL run is an extra, the suite
# runs on SQLite regardless.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${1:-$ROOT/.venv/bin/python}"
DEFAULT_URL="postgres://postgres@127.0.0.1:5432/postgres"

log() { printf 'ensure_postgres: %s\n' "$*" >&2; }

answers() {
  "$PYTHON" - "$1" <<'PY' 2>/dev/null
import sys
import psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
}

if [[ -n "${TEST_POSTGRES_URL:-}" ]]; then
  if answers "$TEST_POSTGRES_URL"; then
    printf '%s\n' "$TEST_POSTGRES_URL"
    exit 0
  fi
  log "no PostgreSQL answers at TEST_POSTGRES_URL"
  exit 1
fi
if answers "$DEFAULT_URL"; then
  printf '%s\n' "$DEFAULT_URL"
else
  log "no PostgreSQL at $DEFAULT_URL; set TEST_POSTGRES_URL to run the tests on PostgreSQL too"
fi
