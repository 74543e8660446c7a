"""The pages as the server renders them: who sees what, sign-up and its switch."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from .support import make_instrument, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    return make_user("demo")[0]


@pytest.mark.parametrize("name", ["home", "trade"])
def test_pages_need_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_dashboard_and_trade_page_for_a_symbol(client, demo):
    make_instrument("ACME")
    make_instrument("BETA")
    client.force_login(demo)
    body = client.get(reverse("home") + "?symbol=BETA").content.decode()
    assert '<option value="BETA" selected>' in body
    assert 'id="page-config"' in body and "js/dashboard.js" in body
    assert "data-controls" not in body  # staff only
    body = client.get(reverse("trade")).content.decode()
    assert '<option value="ACME" selected>' in body and "data-ticket" in body


def test_staff_get_the_simulation_controls(client):
    make_instrument("ACME")
    staff = make_user("operator", is_staff=True)[0]
    client.force_login(staff)
    assert "data-controls" in client.get(reverse("home")).content.decode()


def test_empty_exchange_says_so(client, demo):
    client.force_login(demo)
    assert "No instruments yet" in client.get(reverse("home")).content.decode()


def test_sign_up_creates_a_login_and_signs_in(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "newbie",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert get_user_model().objects.filter(username="newbie").exists()
    assert client.get(reverse("home")).status_code == 200


def test_sign_up_can_be_switched_off(client, settings):
    assert 'href="/signup/"' in client.get(reverse("login")).content.decode()
    settings.FLASHBOOK_SIGNUP_ENABLED = False
    assert client.get(reverse("signup")).status_code == 404
    response = client.post(
        reverse("signup"),
        {
            "username": "newbie",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    assert response.status_code == 404
    assert not get_user_model().objects.filter(username="newbie").exists()
    assert 'href="/signup/"' not in client.get(reverse("login")).content.decode()
