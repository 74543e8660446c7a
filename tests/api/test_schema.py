"""The OpenAPI schema validates without warnings, the docs are served from local files, and a
schema-driven fuzz run (schemathesis, in-process over WSGI) never gets a 5xx."""

import zlib
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from exchange.orders import gateway
from exchange.orders.gateway import OrderRequest
from exchange.services import account_for_user, api_token_create

from .support import make_instrument, make_user

pytestmark = pytest.mark.django_db


def test_the_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/v1/orders/{id}/cancel" in text


@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_the_docs_are_served_without_a_cdn(path):
    response = APIClient().get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn." not in html and "unpkg" not in html
    assert "/api/v1/schema/" in html


# --- Fuzzing --------------------------------------------------------------------------------


def _coin(value) -> bool:
    """A deterministic coin flip on a generated value."""
    return zlib.crc32(repr(value).encode()) % 2 == 1


@dataclass
class Fuzz:
    headers: dict
    order_id: int
    token_id: int


@pytest.fixture
def fuzz(db, settings):
    """A staff user with a token, an instrument and an order the fuzzer can reach, and an app
    that keeps the test's database transaction across requests (as Django's test client does)."""
    settings.FLASHBOOK_ORDER_WAIT = 0.01
    make_instrument()
    user = make_user("fuzzer", is_staff=True)
    _, secret = api_token_create(user=user, name="fuzz")
    spare, _ = api_token_create(user=user, name="to revoke")
    order = gateway.blocking(gateway.order_submit)(
        account=account_for_user(user),
        request=OrderRequest(symbol="ACME", side="buy", quantity=Decimal(1), price=Decimal(99)),
    ).order
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield Fuzz({"Authorization": f"Bearer {secret}"}, order.pk, spare.pk)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _fuzz_schema(fuzz: Fuzz):
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", WSGIHandler())

    @schema.hook
    def map_path_parameters(context, path_parameters):
        # Half the time, aim at things that exist so the fuzzer gets past the 404s.
        if path_parameters and _coin(path_parameters):
            if "symbol" in path_parameters:
                path_parameters["symbol"] = "ACME"
            if "id" in path_parameters:
                is_token = context.operation.path.startswith("/api/v1/tokens/")
                path_parameters["id"] = fuzz.token_id if is_token else fuzz.order_id
        return path_parameters

    @schema.hook
    def map_body(context, body):
        if isinstance(body, dict) and "symbol" in body and _coin(body):
            body["symbol"] = "ACME"
            if context.operation.path == "/api/v1/orders/":
                body["quantity"] = "3"
                if body.get("type") == "market":
                    body.pop("price", None)
                else:
                    body["price"] = "100.25"
        return body

    return schema


def test_the_api_never_answers_5xx(fuzz):
    """Every operation, with valid (schema-conforming) and invalid inputs: never a 5xx."""
    schema = _fuzz_schema(fuzz)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17
    statuses: dict[str, Counter] = {}
    for operation in operations:
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE, hooks=schema.hooks),
            operation.as_strategy(GenerationMode.NEGATIVE, hooks=schema.hooks),
        )

        @given(case=strategy)
        @hypothesis_settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case):
            response = case.call_and_validate(headers=fuzz.headers, checks=[not_a_server_error])
            label = f"{case.method} {case.path}"
            statuses.setdefault(label, Counter())[response.status_code] += 1

        check()
    # The run reached past validation: orders placed, tokens made, an order found.
    successes = {label for label, counts in statuses.items() if any(c < 300 for c in counts)}
    # (POST /api/v1/tokens/ refuses a token-authenticated caller: the fuzzer is one.)
    assert {
        "POST /api/v1/orders/",
        "GET /api/v1/orders/{id}/",
        "POST /api/v1/instruments/{symbol}/halt",
    } <= successes, statuses
