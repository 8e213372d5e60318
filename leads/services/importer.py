"""Historical import (SPEC section 9): leads with their past stage changes and timestamps.

Rows are validated one by one (a bad row is reported with its line and skipped), then written in
chunks: leads upserted in bulk, matched by external_id then email; unknown owners created as
inactive reps; the dated lifecycle written through `leads.lifecycle.record_history_batch`, which skips
steps already recorded, so re-importing the same file changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from scoring import services as scoring

from .. import lifecycle, permissions
from ..bulk import any_of, concrete_field, insert_rows, update_rows
from ..models import PROFILE_FIELDS, Lead, Stage

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
COLUMNS = ("external_id", "email", *LEAD_COLUMNS, "owner", "created_at", *STAGE_COLUMNS, "rejection_reason")
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
MATCH_FIELDS = ("id", "external_id", "email", *LEAD_COLUMNS)
DMY = re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})(?:[ T](\d{1,2}):(\d{2}))?$")


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    created_owners: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected],
            "created_owners": self.created_owners,
        }


class RowError(ValueError):
    pass


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
        raise RowError(f"{column}: '{value}' is not a date (ISO 8601 or DD-MM-YYYY[ HH:MM])")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, tz or timezone.get_current_timezone())
    return moment


def _normalise(row: dict[str, Any]) -> dict[str, str]:
    """A row as `_clean_row` reads it: names stripped and lower-cased, values stripped text."""
    return {k.strip().lower(): (str(v).strip() if v is not None else "") for k, v in row.items() if k}


def _clean_row(data: dict[str, str], tz: dt.tzinfo | None = None) -> dict[str, Any]:
    """Validate one normalised row; a RowError names the first thing wrong with it."""
    email = data.get("email", "").lower()
    ext = data.get("external_id", "")
    if not email and not ext:
        raise RowError(_("external_id or email is required"))
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise RowError(_("email: '%(value)s' is not a valid address") % {"value": email}) from exc
    out: dict[str, Any] = {"email": email, "external_id": ext or None}
    for name in LEAD_COLUMNS:
        value = data.get(name, "")
        if not value:
            continue
        if name == "employees":
            if not value.isdigit():
                raise RowError(_("employees: '%(value)s' is not a whole number") % {"value": value})
            out[name] = int(value)
        elif name == "annual_revenue":
            try:
                out[name] = Decimal(value.replace(",", ""))
            except InvalidOperation as exc:
                raise RowError(_("annual_revenue: '%(value)s' is not a number") % {"value": value}) from exc
            if out[name] < 0 or out[name] >= Decimal("1e14"):
                raise RowError(_("annual_revenue: '%(value)s' is out of range") % {"value": value})
        elif name == "country":
            if len(value) != 2 or not value.isalpha():
                raise RowError(_("country: '%(value)s' is not a two-letter ISO code") % {"value": value})
            out[name] = value.upper()
        else:
            out[name] = value
        if name in MAX_LENGTHS and len(str(out[name])) > MAX_LENGTHS[name]:
            raise RowError(_("%(field)s: longer than %(max)s characters") % {"field": name, "max": MAX_LENGTHS[name]})
    if ext and len(ext) > 255:
        raise RowError(_("%(field)s: longer than %(max)s characters") % {"field": "external_id", "max": 255})
    if data.get("created_at"):
        out["created_at"] = parse_moment(data["created_at"], "created_at", tz)
    steps = []
    for column, stage in STAGE_COLUMNS.items():
        if data.get(column):
            steps.append((stage, parse_moment(data[column], column, tz)))
    reason = data.get("rejection_reason", "")
    if reason and reason not in lifecycle.REJECT_REASONS:
        raise RowError(
            _("rejection_reason: '%(value)s' is not one of %(choices)s")
            % {"value": reason, "choices": ", ".join(sorted(lifecycle.REJECT_REASONS))}
        )
    out["_steps"] = steps
    out["_reason"] = reason
    out["_owner"] = data.get("owner", "")
    return out


def _rows(source: Iterable[dict] | IO[str] | str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, normalised row) for each data row of a CSV file or path, or of dicts."""
    if isinstance(source, str):
        source = open(source, newline="", encoding="utf-8-sig")  # noqa: SIM115
    if hasattr(source, "read"):
        # The rows csv.DictReader would give, normalised, with the header's names cleaned once
        # rather than on every row: a short row reads as blank in its missing columns, cells past
        # the header are ignored, blank lines skipped, and of two columns of one name the later
        # one's cells are read.
        reader = csv.reader(source)  # type: ignore[arg-type]
        header = next(reader, None)
        if header is None:
            return
        last = {name: index for index, name in enumerate(header)}
        columns = {name.strip().lower(): index for name, index in last.items() if name}
        width = len(header)
        for cells in reader:
            if not cells:
                continue
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            yield reader.line_num, {name: cells[index].strip() for name, index in columns.items()}
    else:
        # JSON rows are numbered as if line 1 were a header.
        for index, row in enumerate(source, start=2):  # type: ignore[arg-type]
            yield index, _normalise(row)


def import_leads(
    source: Iterable[dict] | IO[str] | str,
    *,
    user: Any = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import rows from a CSV file object, a path, or an iterable of dicts (JSON rows). A bad
    row is reported in the result with its line, never raised, so one typo in a 100,000-row
    migration does not cost the rest.

    Rows are written CHUNK at a time, each chunk in its own transaction: a file of any size
    holds no long transaction, and a chunk's leads are found in one query. `user` is recorded
    as the actor of the imported history (None: the system); `progress`, if given, is called
    with the number of rows read after each chunk (the import_leads command's progress bar)."""
    result = ImportResult()
    actor = lifecycle.Actor.person(user) if user is not None else lifecycle.SYSTEM
    chunk: list[tuple[int, dict[str, Any]]] = []
    seen = 0
    tz = timezone.get_current_timezone()
    for line, row in _rows(source):
        seen += 1
        try:
            chunk.append((line, _clean_row(row, tz)))
        except RowError as exc:
            result.rejected.append((line, str(exc)))
        if len(chunk) >= CHUNK:
            _write_chunk(chunk, result, actor)
            chunk = []
            if progress:
                progress(seen)
    if chunk:
        _write_chunk(chunk, result, actor)
    if progress:
        progress(seen)
    return result


def _owners(names: set[str], result: ImportResult) -> dict[str, Any]:
    User = get_user_model()
    if not names:
        return {}
    found: dict[str, Any] = {}
    for found_user in User.objects.filter(Q(username__in=names) | Q(email__in=names)):
        found[found_user.username] = found_user
        if found_user.email:
            found[found_user.email] = found_user
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
                result.created_owners.append(username)
            found[name] = new_user
    return found


def _write_chunk(chunk: list[tuple[int, dict[str, Any]]], result: ImportResult, actor: Any) -> None:
    """Write one chunk in one transaction. Leads are handled as plain dicts of their values, not
    Lead instances: building a model object per row cost more than inserting it."""
    with transaction.atomic():
        owners = _owners({data["_owner"] for _, data in chunk if data["_owner"]}, result)
        exts = {d["external_id"] for _, d in chunk if d["external_id"]}
        emails = {d["email"] for _, d in chunk if d["email"]}
        # One read for both keys, and one record per lead whichever key a row names it by.
        by_ext: dict[str, dict[str, Any]] = {}
        by_email: dict[str, dict[str, Any]] = {}
        if exts or emails:
            meta = Lead._meta
            found = Lead.objects.filter(
                any_of(meta.get_field("external_id"), exts) | any_of(meta.get_field("email"), emails)
            ).order_by()
            for values in found.values_list(*MATCH_FIELDS):
                stored = dict(zip(MATCH_FIELDS, values, strict=False))
                if stored["external_id"] in exts:
                    by_ext[stored["external_id"]] = stored
                if stored["email"] in emails:
                    by_email[stored["email"]] = stored
        new: dict[str, dict[str, Any]] = {}
        changed: dict[int, dict[str, Any]] = {}
        changed_fields: set[str] = set()
        targets: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for line, data in chunk:
            ext = data["external_id"]
            lead = (by_ext.get(ext) if ext else None) or (by_email.get(data["email"]) if data["email"] else None)
            lead = lead or new.get(data["email"] or "")
            if lead is None:
                if not data["email"]:
                    result.rejected.append(
                        (line, f"email is required to create a lead (external_id '{ext}' is unknown)")
                    )
                    continue
                lead = {k: v for k, v in data.items() if not k.startswith("_")}
                owner = owners.get(data["_owner"])
                lead["id"], lead["owner_id"] = None, owner.pk if owner is not None else None
                new[data["email"]] = lead
                if ext:
                    by_ext[ext] = lead
                result.created += 1
            else:
                diff = False
                for name, value in data.items():
                    if name.startswith("_") or value in (None, "") or name == "created_at" and lead["id"]:
                        continue
                    if lead.get(name) != value:
                        if name == "email":
                            # An address another lead holds, or a new lead of this file took,
                            # stays with it; an address this row gives the lead is found by
                            # later rows (the file applies in order).
                            holder = by_email.get(value) or new.get(value)
                            if holder is not None and holder is not lead:
                                continue
                            by_email[value] = lead
                        lead[name] = value
                        changed_fields.add(name)
                        diff = True
                if lead["id"] is None:
                    pass
                elif diff:
                    changed[lead["id"]] = lead
                    result.updated += 1
                else:
                    result.unchanged += 1
            targets.append((data, lead))
        if new:
            _insert_leads(list(new.values()))
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
        touched = [lead["id"] for lead in new.values()] + list(changed)
        if touched:
            scoring.on_lead_changed(touched)


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
    missing = [lead["email"] for lead in leads if lead["id"] is None]
    if missing:  # a database that does not return the keys of a bulk insert
        ids = dict(Lead.objects.filter(email__in=missing).values_list("email", "id"))
        for lead in leads:
            lead["id"] = lead["id"] or ids.get(lead["email"])
