"""Write operations of the exchange."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction


@transaction.atomic
def demo_user_ensure(
    *,
    username: str,
    password: str,
    is_superuser: bool = False,
    reset_password: bool = False,
) -> tuple[AbstractUser, bool]:
    """Make sure a demo login exists; return it and whether it was created.

    Idempotent. An existing user keeps the password it has (someone may have changed it in the
    admin) unless `reset_password` is set; its active, staff and superuser flags are restored so
    the demo logins always work as documented.
    """
    user_model = get_user_model()
    user = user_model.objects.select_for_update().filter(username=username).first()
    created = user is None
    if created:
        user = user_model(username=username)

    user.is_active = True
    user.is_staff = is_superuser
    user.is_superuser = is_superuser
    if created or reset_password:
        user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user, created
