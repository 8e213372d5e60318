"""manage.py import_leads FILE: historical import (SPEC section 9) with a progress bar."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from leads.services.importer import import_leads


class Command(BaseCommand):
    help = "Import leads and their dated stage history from a CSV file (SPEC section 9)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--show-rejected", type=int, default=50, help="How many rejected rows to list (default 50)."
        )

    def handle(self, *args, file: Path, show_rejected: int, **options) -> None:
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        with file.open("rb") as raw:
            total = max(sum(1 for _ in raw) - 1, 0)
        bar = tqdm(total=total, unit="row", disable=options.get("verbosity", 1) == 0, file=self.stderr._out)
        done = 0

        def progress(seen: int) -> None:
            nonlocal done
            bar.update(seen - done)
            done = seen

        with file.open(newline="", encoding="utf-8-sig") as handle:
            result = import_leads(handle, progress=progress)
        bar.close()
        self.stdout.write(
            f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}, "
            f"rejected {len(result.rejected)}"
        )
        if result.created_owners:
            self.stdout.write("new inactive reps: " + ", ".join(result.created_owners))
        for line, reason in result.rejected[:show_rejected]:
            self.stdout.write(f"  line {line}: {reason}")
        if len(result.rejected) > show_rejected:
            self.stdout.write(f"  ... and {len(result.rejected) - show_rejected} more")
