"""`/healthz` and `/readyz` against the real Redis, database and engine worker."""

import pytest
from django.test import Client

from tests.recorder.support import make_instrument, run_engine

pytestmark = pytest.mark.django_db(transaction=True)


def probe(path: str, **headers):
    # A probe comes by address, not by the site's name, and over plain http.
    return Client().get(path, HTTP_HOST="10.0.0.7:8000", **headers)


def test_healthz_answers_whatever_the_host_and_the_https_redirect(settings, redis_prefix):
    settings.ALLOWED_HOSTS = ["flashbook.example"]
    settings.SECURE_SSL_REDIRECT = True
    response = probe("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    # Every other path still goes through host validation and the redirect.
    assert probe("/login/").status_code == 400
    assert Client().get("/login/", HTTP_HOST="flashbook.example").status_code == 301


STARTING = "starting: no engine has taken it on yet"


def test_readyz_reports_the_engines_but_an_instrument_starting_keeps_it_ready(file_db, r, settings):
    settings.ALLOWED_HOSTS = ["flashbook.example"]
    make_instrument("ACME", served=False)
    make_instrument("BETA", served=False)
    make_instrument("OFF", enabled=False, served=False)  # not reported

    response = probe("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "checks": {
            "database": "ok",
            "redis": "ok",
            "engines": {"ACME": STARTING, "BETA": STARTING},
        },
    }

    run_engine(file_db, ["ACME"])
    assert probe("/readyz").json()["checks"]["engines"] == {"ACME": "ok", "BETA": STARTING}
    run_engine(file_db, ["BETA"])
    response = probe("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["engines"] == {"ACME": "ok", "BETA": "ok"}
    assert Client().head("/readyz", HTTP_HOST="10.0.0.7:8000").status_code == 200


def test_readyz_says_when_redis_does_not_answer(db, settings, redis_prefix):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = probe("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"].startswith("error: ")
    assert checks["engines"] == {}
