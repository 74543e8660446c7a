"""`GET /api/v1/`: the API's endpoints, read from its OpenAPI schema (the one description of them),
and `GET /api/v1/time`: the server's clock."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


@functools.cache
def _endpoints() -> tuple[dict, ...]:
    # Built once per process (about a tenth of a second): the routes do not change while it runs.
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return tuple(
        {"method": method.upper(), "path": path, "summary": operation.get("summary", "")}
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    )


def api_index() -> dict:
    return {
        "name": "Flashbook API",
        "version": "1",
        "documentation": reverse("api:docs"),
        "schema": reverse("api:schema"),
        "authentication": "Authorization: Bearer <token>; create one at /api/v1/tokens/ "
        "logged in or with your username and password (HTTP Basic) — see the documentation.",
        "websocket": "/ws/v1/",
        "endpoints": list(_endpoints()),
    }


def server_time() -> dict:
    epoch_ms = time.time_ns() // 1_000_000
    return {
        "server_time": datetime.fromtimestamp(epoch_ms / 1000, UTC),
        "epoch_ms": epoch_ms,
    }
