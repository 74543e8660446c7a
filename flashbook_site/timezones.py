"""One clock: every page shows times in the viewer's own time zone, the admin's included.

The browser tells its zone (`Intl.DateTimeFormat().resolvedOptions().timeZone`) in the `tz`
cookie, which base.html sets; this middleware makes it Django's current time zone for the request,
so the admin's dates and the server-rendered pages agree with the live pages' clocks (which format
in the browser). An unknown or missing zone leaves the default (UTC, settings.TIME_ZONE)."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

COOKIE = "tz"


@lru_cache(maxsize=256)
def zone_of(name: str) -> ZoneInfo | None:
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


class ViewerTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = zone_of(unquote(request.COOKIES.get(COOKIE, "")))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
