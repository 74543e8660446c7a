from django.conf import settings


def site(request) -> dict:
    """What every page's navigation needs to know."""
    return {"signup_enabled": settings.FLASHBOOK_SIGNUP_ENABLED}
