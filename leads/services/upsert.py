"""Writing leads from outside data (SPEC section 6): one lead created or edited, or a batch
upserted by external_id, then email, then phone. Stage, scores and owner are never written here; they change
through transitions and assignment. Every write is followed by a rescore, since a changed
profile can change the fit score and so qualify a lead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from scoring import services as scoring

from ..models import IDENTIFIER_FIELDS, Lead
from ..serializers import BulkLeadRowSerializer
from .errors import ServiceError


class BulkResult(TypedDict):
    leads: int
    created: int
    updated: int
    errors: int
    results: list[dict[str, Any]]


def create_lead(*, values: Mapping[str, Any]) -> Lead:
    """Create one lead from validated profile values and score it in the same transaction, so
    the lead is never visible unscored. An email or external_id another lead holds is a
    `ServiceError`: the database's unique constraints decide, so two concurrent creates of one
    address cannot both succeed, and the loser gets an answer rather than a 500."""
    try:
        with transaction.atomic():
            lead = Lead.objects.create(**values)
            scoring.on_lead_changed([lead.pk])
    except IntegrityError as exc:
        raise ServiceError(
            _("A lead with this email or external_id already exists."),
            code="validation_error",
            fields={"email": [_("Already exists.")]},
        ) from exc
    return lead


def update_lead(lead: Lead, *, changes: Mapping[str, Any]) -> Lead:
    """Apply validated profile changes to `lead` and rescore it, in one transaction.

    Only the changed columns are written (and `updated_at`): the instance was read before the
    request's validation, and a full save would put back the stage, owner or scores it held
    then over a transition or rescore that committed in between."""
    with transaction.atomic():
        for name, value in changes.items():
            setattr(lead, name, value)
        lead.save(update_fields=[*changes, "updated_at"])
        scoring.on_lead_changed([lead.pk])
    return lead


def bulk_upsert(rows: Sequence[Any]) -> BulkResult:
    """Upsert leads matched, in this order, by external_id, then email, then phone (SPEC section
    6). Invalid rows are reported and skipped; the valid ones are written in one transaction (a
    row is written whole or not at all).

    A CRM syncs its whole list each night: one bad row must not cost the other 999, so rows are
    answered one by one (`results[i]` for `rows[i]`) rather than refused as a batch. Rows of one
    batch naming the same lead (by any identifier) are one lead: the later rows update it, their
    results carry `repeat_of` (the first row's index), and the counts count leads, not rows.
    The leads are read in one query and written with one bulk insert and one bulk update, then
    scored together; a row per query would make the nightly sync a thousand round trips."""
    results: list[dict[str, Any]] = [{} for _row in rows]
    valid: list[tuple[int, dict[str, Any]]] = []
    for index, row in enumerate(rows):
        serializer = BulkLeadRowSerializer(data=row if isinstance(row, dict) else {})
        if not isinstance(row, dict):
            results[index] = _error(index, {"non_field_errors": [_("Expected an object.")]})
        elif serializer.is_valid():
            valid.append((index, dict(serializer.validated_data)))
        else:
            results[index] = _error(index, _plain(serializer.errors))
    with transaction.atomic():
        index_by: dict[str, dict[Any, Lead]] = {name: {} for name in IDENTIFIER_FIELDS}
        wanted = {name: {data[name] for _index, data in valid if data.get(name)} for name in IDENTIFIER_FIELDS}
        condition = Q()
        for name, values in wanted.items():
            if values:
                condition |= Q(**{f"{name}__in": values})
        if condition:
            for stored in Lead.objects.filter(condition).order_by("id"):
                _remember(index_by, stored)
        new: list[Lead] = []
        first_row: dict[int, int] = {}  # id(lead) -> the first row of the batch that named it
        touched: dict[int, tuple[Lead, set[str]]] = {}
        row_target: dict[int, Lead] = {}
        for index, data in valid:
            lead = _find(index_by, data)
            ext = data.get("external_id")
            if lead is not None:
                conflict = _conflict(index_by, lead, data)
                if conflict:
                    results[index] = _error(index, conflict)
                    continue
            if lead is None:
                lead = Lead(**data)
                new.append(lead)
                results[index] = {"index": index, "status": "created"}
            else:
                for name, value in data.items():
                    if name in IDENTIFIER_FIELDS and not value:
                        continue  # a row without an identifier keeps the lead's
                    setattr(lead, name, value)
                if lead.pk is not None:
                    touched.setdefault(lead.pk, (lead, set()))[1].update(
                        name for name, value in data.items() if value or name not in IDENTIFIER_FIELDS
                    )
                results[index] = {"index": index, "status": "updated" if lead.pk else "created"}
            _remember(index_by, lead)
            if ext:
                index_by["external_id"][ext] = lead
            if id(lead) in first_row:
                results[index]["repeat_of"] = first_row[id(lead)]
            else:
                first_row[id(lead)] = index
            row_target[index] = lead
        if new:
            Lead.objects.bulk_create(new, batch_size=500)
            for name in IDENTIFIER_FIELDS:
                keys = [getattr(lead, name) for lead in new if lead.pk is None and getattr(lead, name)]
                if keys:  # backends that do not return ids from bulk inserts
                    ids = dict(Lead.objects.filter(**{f"{name}__in": keys}).values_list(name, "id"))
                    for lead in new:
                        lead.pk = lead.pk or ids.get(getattr(lead, name))
        fields = sorted({name for _lead, names in touched.values() for name in names} | {"updated_at"})
        if touched:
            now = timezone.now()
            for lead, _names in touched.values():
                lead.updated_at = now
            Lead.objects.bulk_update([lead for lead, _names in touched.values()], fields, batch_size=500)
        for index, lead in row_target.items():
            results[index]["id"] = lead.pk
        if row_target:
            scoring.on_lead_changed(sorted({lead.pk for lead in row_target.values()}))
    errors = sum(1 for result in results if result["status"] == "error")
    return {
        "leads": len(first_row),
        "created": len(new),
        "updated": len(touched),
        "errors": errors,
        "results": results,
    }


def _error(index: int, errors: dict[str, Any]) -> dict[str, Any]:
    return {"index": index, "status": "error", "id": None, "errors": errors}


def _remember(index_by: dict[str, dict[Any, Lead]], lead: Lead) -> None:
    for name in IDENTIFIER_FIELDS:
        value = getattr(lead, name)
        if value:
            index_by[name].setdefault(value, lead)


def _find(index_by: dict[str, dict[Any, Lead]], data: Mapping[str, Any]) -> Lead | None:
    for name in IDENTIFIER_FIELDS:
        value = data.get(name)
        if value and value in index_by[name]:
            return index_by[name][value]
    return None


def _conflict(index_by: dict[str, dict[Any, Lead]], lead: Lead, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """Why the row cannot be written to `lead`: it names an identifier another lead holds, or
    the lead has another external_id than the row's."""
    ext = data.get("external_id")
    if ext and lead.external_id and lead.external_id != ext:
        return {
            "external_id": [
                _("The row's other identifiers belong to a lead with external_id '%(ext)s'.")
                % {"ext": lead.external_id}
            ]
        }
    for name in ("email", "phone"):
        value = data.get(name)
        holder = index_by[name].get(value) if value else None
        if holder is not None and holder is not lead and (holder.pk is None or holder.pk != lead.pk):
            return {name: [_("Belongs to another lead (%(id)s).") % {"id": holder.pk or "new"}]}
    return None


def _plain(errors: Any) -> Any:
    """DRF's ErrorDetail strings as plain ones, so a result can be stored or sent as JSON."""
    if isinstance(errors, dict):
        return {key: _plain(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [_plain(item) for item in errors]
    return str(errors)
