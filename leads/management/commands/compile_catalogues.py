"""`manage.py compile_catalogues`: the .mo files from the committed .po files, without GNU gettext."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from leadflow.catalogues import compile_catalogues


class Command(BaseCommand):
    help = "Compile locale/*/LC_MESSAGES/*.po to .mo in pure Python (polib); no msgfmt needed."

    def add_arguments(self, parser):
        parser.add_argument("--stale", action="store_true", help="Only catalogues newer than their .mo.")

    def handle(self, *args, **options) -> None:
        written = compile_catalogues(only_stale=options["stale"])
        self.stdout.write(f"Compiled {len(written)} catalogue(s).")
