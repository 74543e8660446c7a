"""Who may do what: anonymous requests refused everywhere private, API tokens (create, list,
revoke, Bearer / Token), CSRF on session writes, staff-only operations."""

import hashlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from exchange.models import ApiToken, Instrument, Order
from exchange.services import api_token_create

from .support import LIMIT_BUY, assert_error, journal_entries, journal_length

pytestmark = pytest.mark.django_db

PRIVATE = [
    ("get", "/api/v1/orders/"),
    ("post", "/api/v1/orders/"),
    ("get", "/api/v1/orders/1/"),
    ("get", "/api/v1/orders/by-client-id/c-1/"),
    ("post", "/api/v1/orders/1/cancel"),
    ("post", "/api/v1/orders/1/replace"),
    ("post", "/api/v1/orders/cancel-all"),
    ("get", "/api/v1/account/"),
    ("get", "/api/v1/account/fills/"),
    ("get", "/api/v1/tokens/"),
    ("post", "/api/v1/tokens/"),
    ("delete", "/api/v1/tokens/1/"),
    ("post", "/api/v1/instruments/ACME/halt"),
    ("post", "/api/v1/instruments/ACME/resume"),
    # The simulation controls and the agents' leaderboard (agents app).
    ("get", "/api/v1/sim/"),
    ("get", "/api/v1/sim/events/"),
    ("post", "/api/v1/sim/pause"),
    ("post", "/api/v1/sim/resume"),
    ("post", "/api/v1/sim/reset"),
    ("post", "/api/v1/sim/shock"),
    ("get", "/api/v1/agents/"),
]


def _schema_operations(client) -> set[tuple[str, str]]:
    """(method, path template) of every operation in the OpenAPI schema that needs a login."""
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    private = set()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if {} not in operation.get("security", [{}]):
                private.add((method, path))
    return private


def _concrete(path: str) -> str:
    return path.replace("{id}", "1").replace("{symbol}", "ACME").replace("{client_order_id}", "c-1")


def test_the_list_of_private_endpoints_is_complete():
    listed = {(m, p) for m, p in PRIVATE}
    from_schema = {(m, _concrete(p)) for m, p in _schema_operations(APIClient())}
    assert from_schema == listed


@pytest.mark.parametrize(("method", "path"), PRIVATE)
def test_anonymous_requests_are_refused(instrument, redis_client, method, path):
    response = getattr(APIClient(), method)(path, LIMIT_BUY, format="json")

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert journal_length(redis_client, "ACME") == 0
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    "header",
    [
        "Bearer fb_not-a-real-token",
        "Bearer",
        "Bearer two words",
        "Token " + "x" * 1000,
        "Bearer t\xe9st",
    ],
)
def test_bad_tokens_are_refused(instrument, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(client.get("/api/v1/account/"), 401, "invalid_token")
    # Market data is public, but a bad token is still an error rather than silently anonymous.
    assert_error(client.get("/api/v1/instruments/"), 401, "invalid_token")


def test_market_data_is_public(instrument):
    client = APIClient()
    for path in (
        "/api/v1/instruments/",
        "/api/v1/instruments/ACME/",
        "/api/v1/instruments/ACME/book/",
        "/api/v1/instruments/ACME/trades/",
        "/api/v1/instruments/ACME/candles/",
        "/api/v1/schema/",
    ):
        assert client.get(path).status_code == 200, path


def test_token_lifecycle(alice):
    session = APIClient()
    session.force_authenticate(alice)

    created = session.post("/api/v1/tokens/", {"name": "my bot"}, format="json")
    assert created.status_code == 201
    body = created.json()
    secret = body["token"]
    assert secret.startswith("fb_") and len(secret) > 40
    assert body["prefix"] == secret[:12]
    stored = ApiToken.objects.get(pk=body["id"])
    assert stored.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {stored.prefix, stored.digest, stored.name}

    listed = session.get("/api/v1/tokens/").json()
    assert [t["id"] for t in listed] == [body["id"]]
    assert "token" not in listed[0] and "digest" not in listed[0]

    for keyword in ("Bearer", "Token", "bearer"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"{keyword} {secret}")
        response = client.get("/api/v1/account/")
        assert response.status_code == 200, (keyword, response.json())
        assert response.json()["name"] == "alice"

    assert session.delete(f"/api/v1/tokens/{body['id']}/").status_code == 204
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert_error(client.get("/api/v1/account/"), 401, "invalid_token")
    assert_error(session.delete(f"/api/v1/tokens/{body['id']}/"), 404, "unknown_token")


def test_tokens_are_private_to_their_owner(api, bob_api, alice):
    alices = api.get("/api/v1/tokens/").json()
    assert len(alices) == 1
    assert_error(bob_api.delete(f"/api/v1/tokens/{alices[0]['id']}/"), 404, "unknown_token")
    assert ApiToken.objects.filter(user=alice).count() == 1
    assert len(bob_api.get("/api/v1/tokens/").json()) == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [({}, "required"), ({"name": "x" * 65}, "max_length"), ({"name": "   "}, "blank")],
)
def test_token_names_are_validated(alice, body, code):
    session = APIClient()
    session.force_authenticate(alice)
    assert_error(session.post("/api/v1/tokens/", body, format="json"), 400, code, "name")


def test_a_program_gets_its_first_token_with_its_persons_password(db):
    """HTTP Basic on the tokens endpoint: no login form to scrape (as `curl -u name:password`)."""
    import base64

    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(username="quant", password="s3cret-pass")
    client = APIClient()

    def basic(password: str) -> str:
        return "Basic " + base64.b64encode(f"quant:{password}".encode()).decode()

    wrong = client.post(
        "/api/v1/tokens/", {"name": "bot"}, format="json", HTTP_AUTHORIZATION=basic("nope")
    )
    assert_error(wrong, 401, "authentication_failed")
    assert not ApiToken.objects.exists()
    created = client.post(
        "/api/v1/tokens/", {"name": "bot"}, format="json", HTTP_AUTHORIZATION=basic("s3cret-pass")
    )
    assert created.status_code == 201, created.json()
    secret = created.json()["token"]
    account = client.get("/api/v1/account/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert account.status_code == 200
    # Only the tokens endpoint takes a password: the rest of the API wants a token.
    elsewhere = client.get("/api/v1/account/", HTTP_AUTHORIZATION=basic("s3cret-pass"))
    assert elsewhere.status_code == 401


def test_a_token_cannot_create_tokens(api):
    from exchange.models import ApiToken

    before = ApiToken.objects.count()
    response = api.post("/api/v1/tokens/", {"name": "more"}, format="json")
    assert_error(response, 403, "token_cannot_create_tokens")
    assert ApiToken.objects.count() == before


def test_token_use_is_recorded_at_most_once_a_minute(alice):
    session = APIClient()
    session.force_authenticate(alice)
    secret = session.post("/api/v1/tokens/", {"name": "bot"}, format="json").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    token = ApiToken.objects.get(user=alice)
    assert token.last_used_at is None

    client.get("/api/v1/account/")
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    client.get("/api/v1/account/")
    token.refresh_from_db()
    assert token.last_used_at == first

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get("/api/v1/account/")
    token.refresh_from_db()
    assert token.last_used_at > first - timedelta(seconds=1)
    assert timezone.now() - token.last_used_at < timedelta(seconds=5)


def _csrf_pair() -> tuple[str, str]:
    request = RequestFactory().get("/")
    token = get_token(request)
    return request.META["CSRF_COOKIE"], token


def test_session_writes_need_the_csrf_token(alice, instrument, redis_client):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    # Reads need no CSRF token.
    assert client.get("/api/v1/account/").status_code == 200
    # Writes without it are refused and write nothing.
    for path, body in (
        ("/api/v1/orders/", LIMIT_BUY),
        ("/api/v1/orders/cancel-all", {}),
        ("/api/v1/tokens/", {"name": "x"}),
    ):
        response = client.post(path, body, content_type="application/json")
        assert_error(response, 403, "csrf_failed")
    assert journal_length(redis_client, "ACME") == 0
    assert Order.objects.count() == 0
    assert not ApiToken.objects.exists()

    cookie, token = _csrf_pair()
    client.cookies[settings.CSRF_COOKIE_NAME] = cookie
    response = client.post(
        "/api/v1/orders/", LIMIT_BUY, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 202, response.json()
    assert journal_length(redis_client, "ACME") == 1


def test_token_clients_need_no_csrf_token(alice, instrument):
    _, secret = api_token_create(user=alice, name="bot")
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.post("/api/v1/orders/", LIMIT_BUY, format="json").status_code == 202


def test_only_staff_may_halt_and_resume(api, staff_api, instrument, redis_client):
    for action in ("halt", "resume"):
        assert_error(api.post(f"/api/v1/instruments/ACME/{action}"), 403, "permission_denied")
    assert journal_length(redis_client, "ACME") == 0

    halted = staff_api.post("/api/v1/instruments/ACME/halt")
    assert halted.status_code == 200
    assert halted.json()["halted"] is True
    assert Instrument.objects.get(symbol="ACME").halted
    assert journal_entries(redis_client, "ACME") == [{"t": "halt"}]
    assert_error(api.post("/api/v1/orders/", LIMIT_BUY, format="json"), 409, "instrument_halted")

    resumed = staff_api.post("/api/v1/instruments/ACME/resume")
    assert resumed.json()["halted"] is False
    assert journal_entries(redis_client, "ACME")[-1] == {"t": "resume"}
    assert api.post("/api/v1/orders/", LIMIT_BUY, format="json").status_code == 202
    assert_error(staff_api.post("/api/v1/instruments/NOPE/halt"), 404, "unknown_symbol")
