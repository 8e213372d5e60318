"""Writing leads from outside data (SPEC section 6): one lead created or edited, or a batch
upserted by external_id or email. Stage, scores and owner are never written here; they change
through transitions and assignment. Every write is followed by a rescore, since a changed
profile can change the fit score and so qualify a lead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from scoring import services as scoring

from ..models import Lead
from ..serializers import BulkLeadRowSerializer
from .errors import ServiceError


class BulkResult(TypedDict):
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
    """Upsert leads matched by external_id, then email. Invalid rows are reported and skipped;
    the valid ones are written in one transaction (a row is written whole or not at all).

    A CRM syncs its whole list each night: one bad row must not cost the other 999, so rows are
    answered one by one (`results[i]` for `rows[i]`) rather than refused as a batch. The leads
    are read in two queries and written with one bulk insert and one bulk update, then scored
    together; a row per query would make the nightly sync a thousand round trips."""
    results: list[dict[str, Any]] = [{} for _ in rows]
    valid: list[tuple[int, dict[str, Any]]] = []
    for index, row in enumerate(rows):
        serializer = BulkLeadRowSerializer(data=row if isinstance(row, dict) else {})
        if not isinstance(row, dict):
            results[index] = {
                "index": index,
                "status": "error",
                "id": None,
                "errors": {"non_field_errors": [_("Expected an object.")]},
            }
        elif serializer.is_valid():
            valid.append((index, serializer.validated_data))
        else:
            results[index] = {"index": index, "status": "error", "id": None, "errors": _plain(serializer.errors)}
    with transaction.atomic():
        ext_ids = {data["external_id"] for _, data in valid if data.get("external_id")}
        emails = {data["email"] for _, data in valid}
        by_ext = {lead.external_id: lead for lead in Lead.objects.filter(external_id__in=ext_ids)}
        by_email = {lead.email: lead for lead in Lead.objects.filter(email__in=emails)}
        new: dict[str, Lead] = {}
        touched: dict[int, tuple[Lead, set[str]]] = {}
        row_target: dict[int, Lead] = {}
        for index, data in valid:
            ext = data.get("external_id")
            lead = by_ext.get(ext) if ext else None
            email_owner = by_email.get(data["email"]) or new.get(data["email"])
            if email_owner is not None and lead is not None and email_owner.pk is not None:
                # Two queries give two instances of one row: keep one per primary key.
                email_owner = lead if email_owner.pk == lead.pk else email_owner
            if lead is not None and email_owner is not None and email_owner is not lead:
                results[index] = {
                    "index": index,
                    "status": "error",
                    "id": None,
                    "errors": {
                        "email": [
                            _("Belongs to another lead (%(lead)s) than external_id '%(external_id)s'.")
                            % {"lead": email_owner.pk or _("new"), "external_id": ext}
                        ]
                    },
                }
                continue
            lead = lead or email_owner
            if lead is None:
                lead = Lead(**data)
                new[data["email"]] = lead
                if ext:
                    by_ext[ext] = lead
                results[index] = {"index": index, "status": "created"}
            else:
                if ext and lead.external_id and lead.external_id != ext:
                    results[index] = {
                        "index": index,
                        "status": "error",
                        "id": None,
                        "errors": {
                            "external_id": [
                                f"Email '{data['email']}' belongs to a lead with external_id '{lead.external_id}'."
                            ]
                        },
                    }
                    continue
                for name, value in data.items():
                    setattr(lead, name, value)
                if lead.pk is not None:
                    changed = touched.setdefault(lead.pk, (lead, set()))[1]
                    changed.update(data)
                if ext:
                    by_ext[ext] = lead
                by_email[lead.email] = lead
                results[index] = {"index": index, "status": "updated" if lead.pk else "created"}
            row_target[index] = lead
        if new:
            Lead.objects.bulk_create(list(new.values()), batch_size=500)
            missing = [lead.email for lead in new.values() if lead.pk is None]
            if missing:  # backends that do not return ids from bulk inserts
                ids = dict(Lead.objects.filter(email__in=missing).values_list("email", "id"))
                for lead in new.values():
                    lead.pk = lead.pk or ids.get(lead.email)
        fields = sorted({name for _, names in touched.values() for name in names} | {"updated_at"})
        if touched:
            now = timezone.now()
            for lead, _names in touched.values():
                lead.updated_at = now
            Lead.objects.bulk_update([lead for lead, _ in touched.values()], fields, batch_size=500)
        for index, lead in row_target.items():
            results[index]["id"] = lead.pk
        if row_target:
            scoring.on_lead_changed([lead.pk for lead in row_target.values()])
    counts = {"created": 0, "updated": 0, "error": 0}
    for result in results:
        counts[result["status"]] += 1
    return {"created": counts["created"], "updated": counts["updated"], "errors": counts["error"], "results": results}


def _plain(errors: Any) -> Any:
    """DRF's ErrorDetail strings as plain ones, so a result can be stored or sent as JSON."""
    if isinstance(errors, dict):
        return {key: _plain(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [_plain(item) for item in errors]
    return str(errors)
