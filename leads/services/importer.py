"""Historical import (SPEC section 9): leads with their past stage changes and timestamps.

The file is read twice (`leads.services.import_source`: its encoding detected, never held in
memory). The first pass validates every row, owners included, and writes nothing: a bad row is
reported with its line, column and reason, and a file that cannot be read at all (no header
row, broken CSV) is refused before anything is written. The second pass writes the good rows
CHUNK at a time, each chunk all-or-nothing in its own transaction: leads upserted in bulk,
matched by external_id, then email, then phone; unknown owners created as inactive reps; the
dated lifecycle written through `leads.lifecycle.record_history_batch`, which skips steps
already recorded, so re-importing the same file changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import pickle
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from reports.csv_cells import safe_row
from scoring import services as scoring

from .. import lifecycle, permissions
from ..bulk import any_of, concrete_field, insert_rows, update_rows
from ..identity import IdentityError, clean_profiles, normalise_phone, split_profiles
from ..models import IDENTIFIER_FIELDS, PROFILE_FIELDS, Lead, Stage
from .import_source import UNDECODABLE, CsvSource, ImportFileError, Row, dict_rows

__all__ = ["COLUMNS", "STAGE_COLUMNS", "ImportFileError", "ImportResult", "import_leads", "rejects_csv"]

CHUNK = 1000
LEAD_COLUMNS = PROFILE_FIELDS
STAGE_COLUMNS = {
    "became_mql_at": Stage.MQL,
    "became_sal_at": Stage.SAL,
    "became_sql_at": Stage.SQL,
    "became_won_at": Stage.WON,
    "became_lost_at": Stage.LOST,
    "became_recycled_at": Stage.RECYCLED,
    "became_disqualified_at": Stage.DISQUALIFIED,
}
COLUMNS = (
    *IDENTIFIER_FIELDS,
    *LEAD_COLUMNS,
    "linkedin_url",
    "social_profiles",
    "owner",
    "created_at",
    *STAGE_COLUMNS,
    "rejection_reason",
)
MAX_LENGTHS = {
    "first_name": 100,
    "last_name": 100,
    "company": 200,
    "job_title": 200,
    "industry": 100,
    "source": 100,
    "external_id": 255,
}
# What a row is compared with when it names a lead already stored.
MATCH_FIELDS = ("id", *IDENTIFIER_FIELDS, *LEAD_COLUMNS, "social_profiles")
DMY = re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})(?:[ T](\d{1,2}):(\d{2}))?$")
# Numbers as a spreadsheet writes them, ASCII digits only: "²", "١٢" or "1e5" are not numbers
# here (str.isdigit and Decimal accept them). Thousands separators are commas in their places.
WHOLE = re.compile(r"^(?:\d+|\d{1,3}(?:,\d{3})+)$", re.ASCII)
AMOUNT = re.compile(r"^(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?$", re.ASCII)
MAX_EMPLOYEES = 2_147_483_647


@dataclass(frozen=True)
class Reject:
    line: int
    column: str
    reason: str


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Reject] = field(default_factory=list)
    created_owners: list[str] = field(default_factory=list)
    encoding: str = ""
    rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "encoding": self.encoding,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected_count": len(self.rejected),
            "rejected": [{"line": r.line, "column": r.column, "reason": r.reason} for r in self.rejected],
            "created_owners": self.created_owners,
        }


class RowError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column


def rejects_csv(rejected: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The rejected rows of a summary as CSV text (line, column, reason), UTF-8 with a BOM for
    spreadsheets, each cell neutralised against formula injection."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(["line", "column", "reason"])
    for row in rejected:
        writer.writerow(safe_row([row["line"], row["column"], row["reason"]]))
    yield buffer.getvalue()


def parse_moment(value: str, column: str, tz: dt.tzinfo | None = None) -> dt.datetime:
    """ISO 8601 or DD-MM-YYYY[ HH:MM]; a moment without zone is in `tz`, by default the site's
    time zone (an import passes it once: looking it up costs more than parsing the date)."""
    text = value.strip()
    moment: dt.datetime | None = None
    match = DMY.match(text)
    try:
        if match:
            day, month, year, hour, minute = match.groups()
            # Naive on purpose: made aware in the importing site's time zone below, as ISO dates are.
            moment = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0))  # noqa: DTZ001
        else:
            moment = parse_datetime(text)
            if moment is None:
                day_only = parse_date(text)
                if day_only is not None:
                    moment = dt.datetime.combine(day_only, dt.time())
    except ValueError:
        moment = None
    if moment is None:
        raise RowError(column, _("'%(value)s' is not a date (ISO 8601 or DD-MM-YYYY[ HH:MM])") % {"value": value})
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, tz or timezone.get_current_timezone())
    return moment


def _clean_row(data: dict[str, str], tz: dt.tzinfo | None = None) -> dict[str, Any]:
    """Validate one normalised row; a RowError names the first column wrong in it and why."""
    for name, value in data.items():
        if "\x00" in value:
            raise RowError(name, _("contains a NUL byte"))
        if UNDECODABLE in value:
            raise RowError(name, _("contains bytes that are not text in the file's encoding"))
    email = data.get("email", "").lower()
    ext = data.get("external_id", "")
    phone = data.get("phone", "")
    if not email and not ext and not phone:
        raise RowError("external_id", _("external_id, email or phone is required"))
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise RowError("email", _("'%(value)s' is not a valid address") % {"value": email}) from exc
    if ext and len(ext) > 255:
        raise RowError("external_id", _("longer than 255 characters"))
    out: dict[str, Any] = {"email": email or None, "external_id": ext or None}
    for name in LEAD_COLUMNS:
        value = data.get(name, "")
        if not value:
            continue
        if name == "employees":
            if not WHOLE.match(value) or int(value.replace(",", "")) > MAX_EMPLOYEES:
                raise RowError(name, _("'%(value)s' is not a whole number") % {"value": value})
            out[name] = int(value.replace(",", ""))
        elif name == "annual_revenue":
            if not AMOUNT.match(value):
                raise RowError(name, _("'%(value)s' is not a number") % {"value": value})
            try:
                out[name] = Decimal(value.replace(",", ""))
            except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
                raise RowError(name, _("'%(value)s' is not a number") % {"value": value}) from exc
            if out[name] >= Decimal("1e14"):
                raise RowError(name, _("'%(value)s' is out of range") % {"value": value})
        elif name == "country":
            if len(value) != 2 or not value.isascii() or not value.isalpha():
                raise RowError(name, _("'%(value)s' is not a two-letter ISO code") % {"value": value})
            out[name] = value.upper()
        else:
            out[name] = value
        if name in MAX_LENGTHS and len(str(out[name])) > MAX_LENGTHS[name]:
            raise RowError(name, _("longer than %(n)d characters") % {"n": MAX_LENGTHS[name]})
    try:
        out["phone"] = normalise_phone(phone, out.get("country", "")) if phone else ""
    except IdentityError as exc:
        raise RowError("phone", str(exc)) from exc
    profiles = split_profiles(data.get("linkedin_url", "")) + split_profiles(data.get("social_profiles", ""))
    try:
        out["social_profiles"] = clean_profiles(profiles)
    except IdentityError as exc:
        raise RowError("linkedin_url" if data.get("linkedin_url") else "social_profiles", str(exc)) from exc
    if data.get("created_at"):
        out["created_at"] = parse_moment(data["created_at"], "created_at", tz)
    steps = []
    for column, stage in STAGE_COLUMNS.items():
        if data.get(column):
            steps.append((stage, parse_moment(data[column], column, tz)))
    reason = data.get("rejection_reason", "")
    if reason and reason not in lifecycle.REJECT_REASONS:
        raise RowError(
            "rejection_reason",
            _("'%(value)s' is not one of %(choices)s")
            % {"value": reason, "choices": ", ".join(sorted(lifecycle.REJECT_REASONS))},
        )
    out["_steps"] = steps
    out["_reason"] = reason
    out["_owner"] = data.get("owner", "")
    return out


Progress = Callable[[str, int], None]


def import_leads(
    source: Iterable[dict] | IO[str] | IO[bytes] | str | Path | bytes,
    *,
    user: Any = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import rows from a CSV file (a binary or text file object, its bytes, or a path) or an
    iterable of dicts (JSON rows). A bad row is reported in the result with its line, column and
    reason, never raised, so one typo in a 100,000-row migration does not cost the rest; a file
    that cannot be read as a whole raises ImportFileError before anything is written.

    `user` is recorded as the actor of the imported history (None: the system); `progress`, if
    given, is called with the phase ("validating", "writing") and the rows done so far, after
    each chunk (the command's progress bar, an import job's status)."""
    csv_source: CsvSource | None = None
    if isinstance(source, (str, Path, bytes)) or hasattr(source, "read"):
        csv_source = CsvSource(source)  # type: ignore[arg-type]

        def read() -> Iterator[Row]:
            assert csv_source is not None
            return csv_source.rows(COLUMNS, IDENTIFIER_FIELDS)

    else:
        rows = list(source)  # type: ignore[arg-type]

        def read() -> Iterator[Row]:
            return dict_rows(rows)

    try:
        result = ImportResult(encoding=csv_source.encoding_label if csv_source else "JSON")
        with tempfile.TemporaryFile() as spill:
            _validate(read(), result, timezone.get_current_timezone(), progress, spill)
            spill.seek(0)
            _write(_spilled(spill), result, user, progress)
    finally:
        if csv_source is not None:
            csv_source.close()
    result.rejected.sort(key=lambda r: r.line)
    return result


def _validate(
    rows: Iterator[Row], result: ImportResult, tz: dt.tzinfo, progress: Progress | None, spill: IO[bytes]
) -> None:
    """The first pass: every row checked, owners included, nothing written to the database. The
    good rows, cleaned, go to `spill` (a temporary file, a pickled list per chunk) for the second
    pass: memory holds one chunk, and no row is parsed or validated twice (validating a phone
    number is most of a row's cost)."""
    owner_errors: dict[str, str | None] = {}
    chunk: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        _check_owners(
            {d["_owner"] for _line, d in chunk if d["_owner"] and d["_owner"] not in owner_errors}, owner_errors
        )
        good = []
        for line, data in chunk:
            error = owner_errors.get(data["_owner"]) if data["_owner"] else None
            if error:
                result.rejected.append(Reject(line, "owner", error))
            else:
                good.append((line, data))
        pickle.dump(good, spill, protocol=pickle.HIGHEST_PROTOCOL)
        chunk.clear()

    for row in rows:
        result.rows += 1
        try:
            chunk.append((row.line, _clean_row(row.values, tz)))
        except RowError as exc:
            result.rejected.append(Reject(row.line, exc.column, str(exc)))
        if len(chunk) >= CHUNK:
            flush()
            if progress:
                progress("validating", result.rows)
    if chunk:
        flush()
    if progress:
        progress("validating", result.rows)


def _spilled(spill: IO[bytes]) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    while True:
        try:
            yield pickle.load(spill)
        except EOFError:
            return


def _check_owners(names: set[str], errors: dict[str, str | None]) -> None:
    """For each owner name, None if it may own leads, or why not. An owner is a sales rep,
    found by username or e-mail, active or an inactive placeholder an import made (no password);
    a name nobody has becomes such a placeholder. Staff, managers, marketers and deactivated
    accounts are refused: an import must not hand leads to someone who cannot work them."""
    if not names:
        return
    User = get_user_model()
    users = User.objects.filter(Q(username__in=names) | Q(email__in=names)).prefetch_related("groups")
    found: dict[str, Any] = {}
    for each in users:
        found[each.username] = each
        if each.email:
            found.setdefault(each.email, each)
    for name in names:
        user = found.get(name)
        if user is None:
            errors[name] = None
        elif user.is_staff or user.is_superuser:
            errors[name] = _("'%(name)s' is a staff user, not a sales rep") % {"name": name}
        elif permissions.SALES_REP not in {group.name for group in user.groups.all()}:
            errors[name] = _("'%(name)s' is not a sales rep") % {"name": name}
        elif not user.is_active and user.has_usable_password():
            errors[name] = _("'%(name)s' is a deactivated account") % {"name": name}
        else:
            errors[name] = None


def _write(
    chunks: Iterator[list[tuple[int, dict[str, Any]]]],
    result: ImportResult,
    user: Any,
    progress: Progress | None,
) -> None:
    """The second pass: the good rows, a chunk at a time, each chunk in one transaction. A chunk
    the database refuses (a lead written meanwhile by someone else took an address) is rolled
    back whole and its rows reported; the other chunks stand."""
    actor = lifecycle.Actor.person(user) if user is not None else lifecycle.SYSTEM
    written = 0
    for chunk in chunks:
        if chunk:
            try:
                with transaction.atomic():
                    outcome = _write_chunk(chunk, actor)
            except DatabaseError as exc:
                for line, _data in chunk:
                    result.rejected.append(
                        Reject(
                            line,
                            "",
                            _("not written: its batch was refused by the database (%(error)s)") % {"error": exc},
                        )
                    )
            else:
                result.created += outcome.created
                result.updated += outcome.updated
                result.unchanged += outcome.unchanged
                result.created_owners += outcome.created_owners
                result.rejected += outcome.rejected
        written += len(chunk)
        if progress:
            progress("writing", written)


@dataclass
class _ChunkOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    created_owners: list[str] = field(default_factory=list)
    rejected: list[Reject] = field(default_factory=list)


def _owners(names: set[str], outcome: _ChunkOutcome) -> dict[str, Any]:
    """The users the names (checked by `_check_owners`) stand for; unknown names become inactive
    reps without a password, listed in the summary."""
    User = get_user_model()
    if not names:
        return {}
    found: dict[str, Any] = {}
    for found_user in User.objects.filter(Q(username__in=names) | Q(email__in=names)):
        found[found_user.username] = found_user
        if found_user.email:
            found.setdefault(found_user.email, found_user)
    missing = sorted(name for name in names if name not in found)
    if missing:
        group, _created = Group.objects.get_or_create(name=permissions.SALES_REP)
        for name in missing:
            username = name[:150]
            new_user, created = User.objects.get_or_create(
                username=username,
                defaults={"is_active": False, "email": name if "@" in name else ""},
            )
            if created:
                new_user.set_unusable_password()
                new_user.save(update_fields=["password"])
                new_user.groups.add(group)
                outcome.created_owners.append(username)
            found[name] = new_user
    return found


class _Index:
    """The leads a chunk names, stored or new, by each identifier; looked up in the documented
    order (external_id, then email, then phone)."""

    def __init__(self) -> None:
        self.by: dict[str, dict[Any, dict[str, Any]]] = {name: {} for name in IDENTIFIER_FIELDS}

    def add(self, lead: dict[str, Any]) -> None:
        for name in IDENTIFIER_FIELDS:
            value = lead.get(name)
            if value:
                self.by[name].setdefault(value, lead)

    def find(self, data: dict[str, Any]) -> dict[str, Any] | None:
        for name in IDENTIFIER_FIELDS:
            value = data.get(name)
            if value and value in self.by[name]:
                return self.by[name][value]
        return None

    def holder(self, name: str, value: Any) -> dict[str, Any] | None:
        return self.by[name].get(value)


def _write_chunk(chunk: list[tuple[int, dict[str, Any]]], actor: Any) -> _ChunkOutcome:
    """Write one chunk (the caller holds the transaction). Leads are handled as plain dicts of
    their values, not Lead instances: building a model object per row cost more than inserting
    it."""
    outcome = _ChunkOutcome()
    owners = _owners({data["_owner"] for _line, data in chunk if data["_owner"]}, outcome)
    index = _Index()
    wanted = {name: {d[name] for _line, d in chunk if d.get(name)} for name in IDENTIFIER_FIELDS}
    if any(wanted.values()):
        condition = Q()
        for name, values in wanted.items():
            if values:
                condition |= any_of(concrete_field(Lead, name), values)
        # One read for every key, and one record per lead whichever key a row names it by.
        for values in Lead.objects.filter(condition).order_by("id").values_list(*MATCH_FIELDS):
            index.add(dict(zip(MATCH_FIELDS, values, strict=False)))
    new: list[dict[str, Any]] = []
    changed: dict[int, dict[str, Any]] = {}
    changed_fields: set[str] = set()
    targets: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for _line, data in chunk:
        lead = index.find(data)
        if lead is None:
            lead = {k: v for k, v in data.items() if not k.startswith("_")}
            owner = owners.get(data["_owner"])
            lead["id"], lead["owner_id"] = None, owner.pk if owner is not None else None
            new.append(lead)
            index.add(lead)
            outcome.created += 1
        else:
            diff = False
            for name, value in data.items():
                if name.startswith("_") or value in (None, "", []) or name == "created_at" and lead["id"]:
                    continue
                if name == "social_profiles":
                    value = [*lead.get(name, []), *(url for url in value if url not in lead.get(name, []))]
                if lead.get(name) != value:
                    if name in IDENTIFIER_FIELDS:
                        # An identifier another lead holds, or a new lead of this file took,
                        # stays with it; one this row gives the lead is found by later rows
                        # (the file applies in order).
                        holder = index.holder(name, value)
                        if holder is not None and holder is not lead:
                            continue
                        index.by[name][value] = lead
                    lead[name] = value
                    changed_fields.add(name)
                    diff = True
            if lead["id"] is None:
                pass
            elif diff:
                changed[lead["id"]] = lead
                outcome.updated += 1
            else:
                outcome.unchanged += 1
        targets.append((data, lead))
    if new:
        _insert_leads(new)
    if changed:
        names = sorted(changed_fields)
        now = timezone.now()
        update_rows(
            Lead,
            [concrete_field(Lead, name) for name in (*names, "updated_at")],
            [(lead["id"], *(lead[name] for name in names), now) for lead in changed.values()],
            batch_size=500,
        )
    history = []
    for data, lead in targets:
        if not data["_steps"]:
            continue
        owner = owners.get(data["_owner"])
        steps = [
            lifecycle.HistoricalStep(
                to_stage=stage,
                at=at,
                reason=data["_reason"] if stage in (Stage.RECYCLED, Stage.DISQUALIFIED) and data["_reason"] else "",
                owner_id=owner.pk if owner is not None and stage in (Stage.MQL, Stage.SAL, Stage.SQL) else None,
            )
            for stage, at in data["_steps"]
        ]
        history.append((lead["id"], steps))
    # Steps already recorded (a re-import) are skipped there, so this writes nothing twice.
    lifecycle.record_history_batch(history, actor=actor)
    touched = [lead["id"] for lead in new] + list(changed)
    if touched:
        scoring.on_lead_changed(touched)
    return outcome


def _insert_leads(leads: list[dict[str, Any]]) -> None:
    """INSERT the new leads (dicts of the row's values), each column the model's default where
    the row gave nothing, as `Lead(**values)` would have it; sets each dict's "id"."""
    fields = [f for f in Lead._meta.concrete_fields if not f.primary_key]
    defaults = {f.attname: f.get_default() for f in fields}
    defaults["updated_at"] = timezone.now()  # auto_now, as bulk_create sets it
    names = [f.attname for f in fields]
    rows = [tuple([lead.get(name, defaults[name]) for name in names]) for lead in leads]
    for lead, pk in zip(leads, insert_rows(Lead, fields, rows), strict=False):
        lead["id"] = pk
    missing = [lead for lead in leads if lead["id"] is None]
    if missing:  # a database that does not return the keys of a bulk insert
        for name in IDENTIFIER_FIELDS:
            keys = [lead[name] for lead in missing if lead.get(name) and lead["id"] is None]
            if keys:
                ids = dict(Lead.objects.filter(**{f"{name}__in": keys}).values_list(name, "id"))
                for lead in missing:
                    lead["id"] = lead["id"] or ids.get(lead.get(name))
