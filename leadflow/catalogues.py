"""Compiling and checking the translation catalogues (issue 24) in pure Python.

Django's `compilemessages` needs GNU gettext's msgfmt, which a fresh machine may not have; polib
writes the same .mo files, so `make venv`, `make run`, `make test` and the image build compile
the committed .po files with nothing but the project's own dependencies. The .mo files are
build output and not committed (.gitignore).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polib

BASE_DIR = Path(__file__).resolve().parent.parent
LOCALE_DIR = BASE_DIR / "locale"


def catalogues(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted(locale_dir.glob("*/LC_MESSAGES/*.po"))


def compile_catalogues(locale_dir: Path = LOCALE_DIR, *, only_stale: bool = False) -> list[Path]:
    """Write each catalogue's .mo beside it; with `only_stale`, only those older than their .po.
    Fuzzy entries are left out, as msgfmt does. Returns the .mo files written."""
    written = []
    for po_path in catalogues(locale_dir):
        mo_path = po_path.with_suffix(".mo")
        if only_stale and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
        written.append(mo_path)
    return written


@dataclass
class CatalogueProblems:
    untranslated: list[str] = field(default_factory=list)
    fuzzy: list[str] = field(default_factory=list)
    obsolete: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the code, not in the catalogue
    unused: list[str] = field(default_factory=list)  # in the catalogue, no longer in the code

    def __bool__(self) -> bool:
        return any((self.untranslated, self.fuzzy, self.obsolete, self.missing, self.unused))


def _key(entry: polib.POEntry) -> tuple[str, str, str]:
    return (entry.msgctxt or "", entry.msgid, entry.msgid_plural or "")


def _label(key: tuple[str, str, str]) -> str:
    context, msgid, plural = key
    text = msgid + (f" | {plural}" if plural else "")
    return f"[{context}] {text}" if context else text


def check_catalogue(po_path: Path, extracted: Path | None = None) -> CatalogueProblems:
    """What is wrong with one committed catalogue: entries without a translation (any plural form
    empty counts), fuzzy or obsolete entries, and, given a freshly extracted catalogue of the same
    language, the msgids that differ (line numbers and dates are not compared)."""
    problems = CatalogueProblems()
    catalogue = polib.pofile(str(po_path))
    for entry in catalogue:
        label = _label(_key(entry))
        if entry.obsolete:
            problems.obsolete.append(label)
        elif "fuzzy" in entry.flags:
            problems.fuzzy.append(label)
        elif entry.msgid_plural:
            forms = entry.msgstr_plural
            expected = _plural_count(catalogue)
            if len(forms) < expected or not all(forms.get(i) for i in range(expected)):
                problems.untranslated.append(label)
        elif not entry.msgstr:
            problems.untranslated.append(label)
    if extracted is not None:
        committed = {_key(e) for e in catalogue if not e.obsolete}
        fresh = {_key(e) for e in polib.pofile(str(extracted)) if not e.obsolete}
        problems.missing = sorted(_label(k) for k in fresh - committed)
        problems.unused = sorted(_label(k) for k in committed - fresh)
    return problems


def _plural_count(catalogue: polib.POFile) -> int:
    header = catalogue.metadata.get("Plural-Forms", "")
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip() == "nplurals" and value.strip().isdigit():
            return int(value)
    return 2


# One extraction for `make messages` and the check: the project's languages, file names without
# line numbers (a moved string does not rewrite the catalogue), tests and scripts left out.
LANGUAGES = ("es", "ro")
MAKEMESSAGES_OPTIONS = [
    *(f"--locale={language}" for language in LANGUAGES),
    "--add-location=file",
    "--no-obsolete",
    "--ignore=tests/*",
    "--ignore=bench/*",
    "--ignore=var/*",
    "--ignore=build/*",
    "--ignore=*/migrations/*",
]
