"""How the API's URLs are declared: each route answers with and without its trailing slash.

Resources end with a slash and actions on them (`cancel`, `replace`, `halt`, `cancel-all`, ...) do
not, but a client that gets this wrong must not be punished for it: Django's APPEND_SLASH answers
a POST without the slash with a 500 under DEBUG and a 301 otherwise, which HTTP clients follow as a
GET — a placed order turns into a read of the order list. So every route is also served in its
other form, by the same view, and left out of the schema (one documented form per endpoint).
"""

from __future__ import annotations

from django.urls import path

ALTERNATE = "flashbook_alternate_form"


def route(pattern: str, view, name: str) -> list:
    """The route `pattern` (its documented form) and its other form, with or without the final
    slash: one view answers both, only the first is named and documented."""
    if not pattern:
        return [path(pattern, view, name=name)]  # the prefix's own slash is the only form
    other = pattern[:-1] if pattern.endswith("/") else pattern + "/"
    return [path(pattern, view, name=name), path(other, _alternate(view))]


def _alternate(view):
    """The same view under another callable, marked so the schema leaves it out."""

    def alternate(request, *args, **kwargs):
        return view(request, *args, **kwargs)

    alternate.__dict__.update(view.__dict__)  # cls, initkwargs, csrf_exempt: what DRF reads
    alternate.__name__ = getattr(view, "__name__", "view")
    setattr(alternate, ALTERNATE, True)
    return alternate


def without_alternate_forms(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: documents each endpoint once."""
    return [e for e in endpoints if not getattr(e[3], ALTERNATE, False)]
