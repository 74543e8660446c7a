"""The viewer's time zone (the `tz` cookie the pages set) is Django's current zone for the
request, so the admin's dates read in the viewer's clock."""

from django.test import RequestFactory
from django.utils import timezone

from flashbook_site.timezones import ViewerTimeZoneMiddleware


def _zone_seen(cookie: str | None) -> str:
    request = RequestFactory().get("/")
    if cookie is not None:
        request.COOKIES["tz"] = cookie
    middleware = ViewerTimeZoneMiddleware(lambda r: timezone.get_current_timezone_name())
    return middleware(request)


def test_the_cookie_names_the_zone_for_the_request_only():
    assert _zone_seen("America/New_York") == "America/New_York"
    assert _zone_seen("Asia%2FTokyo") == "Asia/Tokyo"  # percent-encoded by some browsers
    assert timezone.get_current_timezone_name() == "UTC"  # not left active afterwards


def test_a_missing_or_unknown_zone_is_the_servers():
    for cookie in (None, "", "Mars/Olympus_Mons", "../../etc/passwd", "x" * 200):
        assert _zone_seen(cookie) == "UTC", cookie
