"""Settings come from the environment.

Each case imports the settings in a fresh interpreter with a controlled environment (and no
.env file), since settings are read once per process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Prints the settings under test as JSON.
PROBE = """
import json
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "SECRET_KEY": settings.SECRET_KEY,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "ENGINE": db["ENGINE"],
    "NAME": str(db["NAME"]),
    "HOST": db.get("HOST", ""),
    "PORT": str(db.get("PORT", "")),
    "USER": db.get("USER", ""),
    "REDIS_URL": settings.REDIS_URL,
    "FLASHBOOK_REDIS_PREFIX": settings.FLASHBOOK_REDIS_PREFIX,
}))
"""

SETTINGS_VARS = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "FLASHBOOK_REDIS_PREFIX",
)


def load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}
    clean.update(
        DJANGO_SETTINGS_MODULE="flashbook_site.settings",
        FLASHBOOK_ENV_FILE="",
        PYTHONPATH=str(REPO),
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_from(tmp_path: Path, **env: str) -> dict:
    result = load_settings(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_defaults_for_development(tmp_path):
    s = settings_from(tmp_path, DEBUG="1")

    assert s["DEBUG"] is True
    assert s["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(s["NAME"]) == REPO / "var" / "db.sqlite3"
    assert s["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert s["FLASHBOOK_REDIS_PREFIX"] == "fb"
    assert "127.0.0.1" in s["ALLOWED_HOSTS"]
    assert s["SECRET_KEY"]  # the development key


def test_database_url_for_postgresql(tmp_path):
    s = settings_from(
        tmp_path,
        DEBUG="1",
        DATABASE_URL="postgres://flash:pw@db.internal:5433/flashbook",
    )

    assert s["ENGINE"] == "django.db.backends.postgresql"
    assert s["NAME"] == "flashbook"
    assert s["HOST"] == "db.internal"
    assert s["PORT"] == "5433"
    assert s["USER"] == "flash"


def test_database_url_for_another_sqlite_file(tmp_path):
    db_file = tmp_path / "nested" / "other.sqlite3"

    s = settings_from(tmp_path, DEBUG="1", DATABASE_URL=f"sqlite:///{db_file}")

    assert s["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(s["NAME"]) == db_file
    assert db_file.parent.is_dir()  # created so SQLite can create the file


def test_redis_and_hosts_from_the_environment(tmp_path):
    s = settings_from(
        tmp_path,
        DEBUG="0",
        SECRET_KEY="x" * 50,
        REDIS_URL="redis://cache:6380/3",
        FLASHBOOK_REDIS_PREFIX="fbtest",
        ALLOWED_HOSTS="flashbook.example.org,.example.net",
    )

    assert s["DEBUG"] is False
    assert s["SECRET_KEY"] == "x" * 50
    assert s["REDIS_URL"] == "redis://cache:6380/3"
    assert s["FLASHBOOK_REDIS_PREFIX"] == "fbtest"
    assert s["ALLOWED_HOSTS"] == ["flashbook.example.org", ".example.net"]


@pytest.mark.parametrize("debug", [None, "0", "false"])
def test_secret_key_is_required_without_debug(tmp_path, debug):
    env = {} if debug is None else {"DEBUG": debug}

    result = load_settings(tmp_path, **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr


def test_env_file_is_read_but_the_environment_wins(tmp_path):
    env_file = tmp_path / "flashbook.env"
    env_file.write_text("DEBUG=1\nFLASHBOOK_REDIS_PREFIX=from-file\nREDIS_URL=redis://file:1/0\n")

    s = settings_from(tmp_path, FLASHBOOK_ENV_FILE=str(env_file), REDIS_URL="redis://from-env:2/0")

    assert s["DEBUG"] is True
    assert s["FLASHBOOK_REDIS_PREFIX"] == "from-file"
    assert s["REDIS_URL"] == "redis://from-env:2/0"
