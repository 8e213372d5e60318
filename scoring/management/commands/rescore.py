"""manage.py rescore [--all | --lead ID ...]: recompute scores, promote leads that qualify."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from scoring import definitions, services


class Command(BaseCommand):
    help = "Re-score open leads under the active definition; leads that now qualify become MQL."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--all", action="store_true", help="Every open lead.")
        parser.add_argument("--lead", type=int, action="append", default=[], help="A lead id.")

    def handle(self, *args, **options) -> None:
        if definitions.active_definition() is None:
            raise CommandError("No qualified-lead definition is active; activate one first.")
        started = time.monotonic()
        if options["lead"]:
            promoted = services.rescore_leads(options["lead"])
            self.stdout.write(f"Re-scored {len(options['lead'])} lead(s); {promoted} became MQL.")
            return
        if not options["all"]:
            raise CommandError("Say what to re-score: --all, or --lead ID.")
        bar = _progress(self.stdout)
        result = services.rescore_all(progress=bar)
        elapsed = time.monotonic() - started
        rate = result["scored"] / elapsed if elapsed else 0
        self.stdout.write(
            f"\nRe-scored {result['scored']} open leads in {elapsed:.1f} s ({rate:,.0f}/s); "
            f"{result['promoted']} became MQL."
        )


def _progress(stdout):
    def show(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
        stdout.flush()

    return show
