import os

from django.core.management.base import BaseCommand

from exchange.services import demo_user_ensure


class Command(BaseCommand):
    help = (
        "Create the demo logins if they are missing (idempotent): the superuser 'admin' and the "
        "user 'demo'. Passwords come from FLASHBOOK_ADMIN_PASSWORD and FLASHBOOK_DEMO_PASSWORD "
        "(default: 'admin' and 'demo')."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Also set the passwords of users that already exist.",
        )

    def handle(self, *args, **options):
        logins = [
            ("admin", os.environ.get("FLASHBOOK_ADMIN_PASSWORD") or "admin", True),
            ("demo", os.environ.get("FLASHBOOK_DEMO_PASSWORD") or "demo", False),
        ]
        for username, password, is_superuser in logins:
            _, created = demo_user_ensure(
                username=username,
                password=password,
                is_superuser=is_superuser,
                reset_password=options["reset_passwords"],
            )
            role = "superuser" if is_superuser else "user"
            state = "created" if created else "already present"
            self.stdout.write(f"{role} '{username}': {state}")
