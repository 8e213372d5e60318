"""`manage.py create_token USERNAME [--name NAME] [--days N]`: an API token for a user (SPEC §9).

The key is printed alone on the last line so a script can take it with `tail -n1`; it is stored
hashed and cannot be shown again.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from leads.tokens import issue_token


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print its key (shown once) on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A name to tell the token apart (default: cli).")
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"Days the token is valid (default: API_TOKEN_DEFAULT_DAYS, {settings.API_TOKEN_DEFAULT_DAYS}).",
        )

    def handle(self, *args: Any, username: str, name: str, days: int | None, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1.")
        token, key = issue_token(user=user, name=name, days=days)
        self.stdout.write(f"Token '{token.name}' for {username}, valid until {token.expires_at:%Y-%m-%d %H:%M} UTC.")
        self.stdout.write(key)
