"""How the API knows who is calling.

* Programs: `Authorization: Bearer <token>` (or `Token <token>`), a token made at
  `/api/v1/tokens/`. Only the token's SHA-256 digest is stored; its use is recorded at most once a
  minute.
* Pages: the site's session cookie, with Django's CSRF check on every unsafe method.
"""

from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)

from exchange.models import Account
from exchange.orders.refresh import GroupedRefresh
from exchange.selectors import api_token_by_secret, api_token_digest, api_tokens_by_digest
from exchange.services import account_for_user, api_token_touch

KEYWORDS = (b"bearer", b"token")
MAX_SECRET_LENGTH = 256


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None  # not ours: maybe the session
        if len(parts) != 2 or len(parts[1]) > MAX_SECRET_LENGTH:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: use 'Bearer <token>'.", code="invalid_token"
            )
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "Invalid or revoked token.", code="invalid_token"
            ) from None
        token = api_token_by_secret(secret)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.", code="invalid_token")
        api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


@dataclass(frozen=True)
class Caller:
    user: AbstractBaseUser
    account: Account


# How long order entry trusts a token once looked up: a revoked token (or a
# deactivated user) is refused within this many seconds. Looked up again in the background before
# then while orders keep coming (`exchange.orders.refresh`).
CALLER_CACHE_SECONDS = 1.0


def _callers_by_digest(digests: dict[str, None]) -> dict[str, Caller | None]:
    tokens = api_tokens_by_digest(list(digests))
    callers: dict[str, Caller | None] = {}
    for digest in digests:
        token = tokens.get(digest)
        if token is None or not token.user.is_active:
            callers[digest] = None
            continue
        api_token_touch(token=token)
        callers[digest] = Caller(user=token.user, account=account_for_user(token.user))
    return callers


# Every token in use in this process, looked up together (`GroupedRefresh`), by digest.
_callers: GroupedRefresh[str, None, Caller | None] = GroupedRefresh(
    CALLER_CACHE_SECONDS, sync_to_async(_callers_by_digest)
)


async def acaller_for_secret(secret: str) -> Caller | None:
    """Who a bearer token belongs to, with their trading account (None: unknown or revoked)."""
    return await _callers.get(api_token_digest(secret), None)


class CsrfSessionAuthentication(SessionAuthentication):
    """The session, as DRF checks it (CSRF enforced on unsafe methods), with a distinct error
    code for a failed CSRF check."""

    def enforce_csrf(self, request):
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc.detail), code="csrf_failed") from None


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from POST /api/v1/tokens/ ('Token <token>' also works).",
        }


class CsrfSessionScheme(OpenApiAuthenticationExtension):
    target_class = CsrfSessionAuthentication
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        from django.conf import settings

        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
