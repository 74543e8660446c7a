"""The login page, the home page behind it, and the admin."""

import sys

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_user():
    return get_user_model().objects.create_user(username="demo", password="demo-pass-123")


@pytest.fixture
def admin_user_():
    return get_user_model().objects.create_superuser(
        username="boss", password="boss-pass-123", email="boss@example.org"
    )


def test_login_page_renders(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "<form" in body
    assert 'name="username"' in body
    assert 'name="password"' in body
    assert "csrfmiddlewaretoken" in body
    assert "/static/css/site.css" in body


def test_anonymous_user_is_redirected_from_home_to_login(client):
    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/"


def test_demo_user_logs_in_and_reaches_home(client, demo_user):
    response = client.post(
        reverse("login"),
        {"username": "demo", "password": "demo-pass-123"},
        follow=True,
    )

    assert response.redirect_chain == [(reverse("home"), 302)]
    assert response.status_code == 200
    assert response.wsgi_request.user == demo_user
    body = response.content.decode()
    assert "Welcome, demo" in body
    assert "Log out" in body
    # Not staff: no admin link.
    assert reverse("admin:index") not in body


def test_login_with_a_wrong_password_fails(client, demo_user):
    response = client.post(reverse("login"), {"username": "demo", "password": "nope"})

    assert response.status_code == 200
    assert not response.wsgi_request.user.is_authenticated
    assert "Please enter a correct username and password" in response.content.decode()


def test_login_honours_next(client, demo_user):
    response = client.post(
        f"{reverse('login')}?next=/admin/",
        {"username": "demo", "password": "demo-pass-123", "next": "/admin/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_logout_needs_post_and_ends_the_session(client, demo_user):
    client.force_login(demo_user)

    assert client.get(reverse("logout")).status_code == 405

    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.get(reverse("home")).status_code == 302


def test_home_shows_the_engine_version_when_the_extension_imports(client, demo_user, monkeypatch):
    fake = type(sys)("flashbook_engine")
    fake.__version__ = "9.8.7"
    monkeypatch.setitem(sys.modules, "flashbook_engine", fake)
    client.force_login(demo_user)

    body = client.get(reverse("home")).content.decode()

    assert "Available" in body
    assert "9.8.7" in body


def test_home_says_so_when_the_engine_extension_is_missing(client, demo_user, monkeypatch):
    # A None entry in sys.modules makes `import flashbook_engine` raise ImportError.
    monkeypatch.setitem(sys.modules, "flashbook_engine", None)
    client.force_login(demo_user)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Not available" in body
    assert "flashbook_engine" in body


def test_admin_login_page_renders(client):
    response = client.get(reverse("admin:login"))

    assert response.status_code == 200
    assert "Flashbook administration" in response.content.decode()


def test_superuser_reaches_the_admin_index(client, admin_user_):
    response = client.post(
        f"{reverse('admin:login')}?next={reverse('admin:index')}",
        {"username": "boss", "password": "boss-pass-123", "next": reverse("admin:index")},
        follow=True,
    )

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("admin:index")
    body = response.content.decode()
    assert "Exchange and simulation settings" in body
    assert reverse("admin:auth_user_changelist") in body


def test_non_staff_user_cannot_use_the_admin(client, demo_user):
    client.force_login(demo_user)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_sees_the_admin_link_on_home(client, admin_user_):
    client.force_login(admin_user_)

    body = client.get(reverse("home")).content.decode()

    assert f'href="{reverse("admin:index")}"' in body


def test_static_files_are_served_by_the_application(client):
    # The ASGI server serves no files itself: the CSS must come from the app (WhiteNoise).
    response = client.get("/static/css/site.css")
    assert response.status_code == 200
    assert b"{" in b"".join(response.streaming_content)
