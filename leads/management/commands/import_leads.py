"""manage.py import_leads FILE: historical import (SPEC section 9) with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from leads.services.importer import ImportFileError, import_leads, rejects_csv


class Command(BaseCommand):
    help = "Import leads and their dated stage history from a CSV file (SPEC section 9)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--show-rejected", type=int, default=50, help="How many rejected rows to list (default 50)."
        )
        parser.add_argument("--rejects", type=Path, help="Write every rejected row (line, column, reason) to this CSV.")

    def handle(self, *args, file: Path, show_rejected: int, rejects: Path | None = None, **options) -> None:
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        with file.open("rb") as raw:
            total = max(sum(1 for _ in raw) - 1, 0)
        quiet = options.get("verbosity", 1) == 0
        bars: dict[str, Any] = {}

        def progress(phase: str, seen: int) -> None:
            # One bar per pass: every row is validated before any is written.
            bar = bars.get(phase)
            if bar is None:
                for other in bars.values():
                    other.close()
                bar = bars[phase] = tqdm(total=total, unit="row", desc=phase, disable=quiet, file=self.stderr._out)
            bar.update(seen - bar.n)

        try:
            result = import_leads(file, progress=progress)
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            for bar in bars.values():
                bar.close()
        self.stdout.write(f"encoding {result.encoding}")
        self.stdout.write(
            f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}, "
            f"rejected {len(result.rejected)}"
        )
        if result.created_owners:
            self.stdout.write("new inactive reps: " + ", ".join(result.created_owners))
        for reject in result.rejected[:show_rejected]:
            self.stdout.write(f"  line {reject.line}, {reject.column or '-'}: {reject.reason}")
        if len(result.rejected) > show_rejected:
            self.stdout.write(f"  ... and {len(result.rejected) - show_rejected} more")
        if rejects is not None:
            with rejects.open("w", encoding="utf-8", newline="") as out:
                out.writelines(rejects_csv(result.as_dict()["rejected"]))
            self.stdout.write(f"rejected rows written to {rejects}")
