"""Production settings: `check --deploy` is clean with the environment docker-compose.yml gives the
web service; static files are hashed, compressed and served with long cache lifetimes; logs are
JSON on request. Each case runs Django in a fresh interpreter with a controlled environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .compose import ROOT, load, service_environment


def run(tmp_path: Path, env: dict[str, str], *args: str, timeout: float = 120):
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "SESSION_", "CSRF_", "DJANGO_", "FLASHBOOK_", "LOG_"))
        and k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "STATIC_ROOT"}
    }
    clean.update(FLASHBOOK_ENV_FILE="", PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def compose_web_environment() -> dict[str, str]:
    return service_environment(load()["services"]["web"])


def test_check_deploy_has_no_warnings_with_the_production_environment(tmp_path):
    result = run(
        tmp_path,
        compose_web_environment(),
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_names_what_a_bare_environment_forgets(tmp_path):
    """The same check fails without the proxy's settings: it is the test above's teeth."""
    result = run(
        tmp_path,
        {"DEBUG": "0", "SECRET_KEY": "x" * 60, "DATABASE_URL": f"sqlite:///{tmp_path}/db"},
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008"):  # no HSTS, no https redirect
        assert warning in result.stderr, result.stderr


PROBE_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({name: getattr(settings, name) for name in (
    "DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS")}
    | {"STATICFILES": settings.STORAGES["staticfiles"]["BACKEND"]}))
"""


def test_the_production_switches_follow_the_environment(tmp_path):
    env = {"DJANGO_SETTINGS_MODULE": "flashbook_site.settings"}
    production = run(tmp_path, {**env, **compose_web_environment()}, "-c", PROBE_SETTINGS)
    assert production.returncode == 0, production.stderr
    assert json.loads(production.stdout) == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "ALLOWED_HOSTS": ["localhost"],
        "CSRF_TRUSTED_ORIGINS": ["https://localhost"],
        "STATICFILES": "flashbook_site.storage.StaticFilesStorage",
    }
    # Over plain http (benchmarks, tests, a private network): the redirect and HSTS stay off.
    plain = run(tmp_path, {**env, "SECRET_KEY": "x" * 60}, "-c", PROBE_SETTINGS)
    assert plain.returncode == 0, plain.stderr
    values = json.loads(plain.stdout)
    assert (values["SECURE_SSL_REDIRECT"], values["SECURE_HSTS_SECONDS"]) == (False, 0)
    development = run(tmp_path, {**env, "DEBUG": "1"}, "-c", PROBE_SETTINGS)
    assert json.loads(development.stdout)["STATICFILES"].endswith("StaticFilesStorage")
    assert "whitenoise" not in json.loads(development.stdout)["STATICFILES"]
    assert "flashbook_site" not in json.loads(development.stdout)["STATICFILES"]


SERVE_STATIC = """
import re
from django.test import Client
client = Client()
page = client.get("/login/", secure=True).content.decode()
css = re.search(r'href="(/static/css/site\\.[0-9a-f]{12}\\.css)"', page).group(1)
response = client.get(css, secure=True, HTTP_ACCEPT_ENCODING="gzip")
body = b"".join(response.streaming_content)
print(response.status_code, response["Cache-Control"], response.get("Content-Encoding"), len(body),
      sep="|")
"""


@pytest.mark.slow
def test_collected_static_files_are_hashed_compressed_and_cached_for_ever(tmp_path):
    static_root = tmp_path / "static"
    env = {
        "DEBUG": "0",
        "SECRET_KEY": "x" * 60,
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "STATIC_ROOT": str(static_root),
        "ALLOWED_HOSTS": "testserver",
        "DJANGO_SETTINGS_MODULE": "flashbook_site.settings",
    }
    if not (ROOT / "static" / "vendor" / ".installed").exists():
        subprocess.run([str(ROOT / "scripts" / "web_assets.sh")], check=True, cwd=ROOT)
    collected = run(tmp_path, env, "manage.py", "collectstatic", "--no-input", "-v", "0")
    assert collected.returncode == 0, collected.stderr
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    dashboard = static_root / manifest["js/dashboard.js"]
    assert dashboard.with_name(dashboard.name + ".gz").exists()
    # The ES modules import each other under their hashed names: one release, never a mix.
    for module in ("api", "charts", "dom", "market", "socket"):
        hashed = Path(manifest[f"js/{module}.js"]).name
        assert f'"./{hashed}"' in dashboard.read_text(), module
    served = run(tmp_path, env, "-c", "import django; django.setup()\n" + SERVE_STATIC)
    assert served.returncode == 0, served.stderr
    status, cache_control, encoding, size = served.stdout.strip().split("|")
    assert (status, encoding) == ("200", "gzip")
    assert "immutable" in cache_control and "max-age=315360000" in cache_control
    assert int(size) > 0


LOG_LINE = """
import logging
import django
django.setup()
logging.getLogger("flashbook.recorder").info("recorded %d entries", 3, extra={"symbol": "ACME"})
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("flashbook.web").exception("failed")
"""


def test_json_logs_on_request(tmp_path):
    env = {"DEBUG": "1", "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "flashbook_site.settings"}
    result = run(tmp_path, env, "-c", LOG_LINE)
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stderr.splitlines()[-2:])
    assert first["level"] == "info" and first["component"] == "flashbook.recorder"
    assert first["msg"] == "recorded 3 entries" and first["symbol"] == "ACME"
    assert isinstance(first["ts"], float)
    assert second["level"] == "error" and "ZeroDivisionError" in second["exc"]
    plain = run(tmp_path, {**env, "LOG_FORMAT": "plain"}, "-c", LOG_LINE)
    assert "INFO flashbook.recorder: recorded 3 entries" in plain.stderr
