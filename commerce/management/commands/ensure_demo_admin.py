"""Create or update the demo's staff user from DEMO_ADMIN_USER and DEMO_ADMIN_PASSWORD."""
import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the staff superuser named by DEMO_ADMIN_USER (default admin) with DEMO_ADMIN_PASSWORD."

    def handle(self, *args, **options):
        username = os.environ.get("DEMO_ADMIN_USER", "admin")
        password = os.environ.get("DEMO_ADMIN_PASSWORD")
        if not password:
            raise CommandError("DEMO_ADMIN_PASSWORD is not set; export it before running this command.")

        user, created = get_user_model().objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"staff user {username!r} {'created' if created else 'updated'}")
