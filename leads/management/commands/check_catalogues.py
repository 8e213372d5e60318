"""`manage.py check_catalogues` (`make i18n-check`, run by .ci/run): fails when a catalogue has an
untranslated, fuzzy or obsolete entry, or is stale (the code's strings, extracted afresh into a
throw-away copy of the tree, differ from the committed catalogue's msgids)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from leadflow.catalogues import BASE_DIR, LANGUAGES, MAKEMESSAGES_OPTIONS, check_catalogue


def _source_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if (BASE_DIR / name).is_file()]


class Command(BaseCommand):
    help = "Fail on untranslated, fuzzy or obsolete entries and on catalogues that are not up to date."

    def handle(self, *args, **options) -> None:
        if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
            raise CommandError("GNU gettext (xgettext, msgmerge) is needed: apt-get install gettext")
        failures = 0
        with tempfile.TemporaryDirectory(prefix="leadflow-i18n-") as tmp:
            copy = Path(tmp) / "tree"
            for name in _source_files():
                target = copy / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(BASE_DIR / name, target)
            subprocess.run(
                [sys.executable, "manage.py", "makemessages", *MAKEMESSAGES_OPTIONS, "--verbosity=0"],
                cwd=copy,
                check=True,
            )
            for language in LANGUAGES:
                committed = BASE_DIR / "locale" / language / "LC_MESSAGES" / "django.po"
                if not committed.exists():
                    self.stderr.write(f"{language}: no catalogue at {committed.relative_to(BASE_DIR)}")
                    failures += 1
                    continue
                fresh = copy / "locale" / language / "LC_MESSAGES" / "django.po"
                problems = check_catalogue(committed, fresh)
                for kind in ("untranslated", "fuzzy", "obsolete", "missing", "unused"):
                    for label in getattr(problems, kind):
                        self.stderr.write(f"{language}: {kind}: {label}")
                if problems:
                    failures += 1
                else:
                    self.stdout.write(f"{language}: complete and up to date")
        if failures:
            raise CommandError(
                "Catalogues need work: `make messages`, translate the new entries (no fuzzy ones), commit."
            )
