"""`manage.py ensure_demo_users`: the logins `make run` promises."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def default_passwords(monkeypatch):
    monkeypatch.delenv("FLASHBOOK_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("FLASHBOOK_DEMO_PASSWORD", raising=False)


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("ensure_demo_users", *args, stdout=out)
    return out.getvalue()


def test_creates_admin_and_demo_with_default_passwords():
    output = run_command()

    admin = authenticate(username="admin", password="admin")
    demo = authenticate(username="demo", password="demo")
    assert admin is not None and admin.is_superuser and admin.is_staff and admin.is_active
    assert demo is not None and not demo.is_superuser and not demo.is_staff and demo.is_active
    assert "superuser 'admin': created" in output
    assert "user 'demo': created" in output


def test_is_idempotent():
    run_command()
    user_model = get_user_model()
    ids = dict(user_model.objects.values_list("username", "pk"))

    output = run_command()

    assert user_model.objects.count() == 2
    assert dict(user_model.objects.values_list("username", "pk")) == ids
    assert "superuser 'admin': already present" in output
    assert "user 'demo': already present" in output
    assert authenticate(username="demo", password="demo") is not None


def test_passwords_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FLASHBOOK_ADMIN_PASSWORD", "s3cret-admin")
    monkeypatch.setenv("FLASHBOOK_DEMO_PASSWORD", "s3cret-demo")

    run_command()

    assert authenticate(username="admin", password="s3cret-admin") is not None
    assert authenticate(username="demo", password="s3cret-demo") is not None
    assert authenticate(username="admin", password="admin") is None


def test_keeps_a_changed_password_unless_asked_to_reset():
    run_command()
    demo = get_user_model().objects.get(username="demo")
    demo.set_password("changed-in-admin")
    demo.is_active = False
    demo.save()

    run_command()

    demo.refresh_from_db()
    assert demo.is_active  # the documented login must work again
    assert demo.check_password("changed-in-admin")

    run_command("--reset-passwords")

    demo.refresh_from_db()
    assert demo.check_password("demo")
