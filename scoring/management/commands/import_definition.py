"""manage.py import_definition FILE: a new draft from SPEC section 9 JSON."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from scoring.definitions import import_definition


class Command(BaseCommand):
    help = "Create a draft definition from a JSON file (sign and activate it in the admin)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")

    def handle(self, *args, **options) -> None:
        try:
            with open(options["file"], encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc}") from exc
        try:
            definition = import_definition(data)
        except ValidationError as exc:
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(f"Not imported: {problems}") from exc
        self.stdout.write(f"Imported draft v{definition.version} '{definition.name}'.")
