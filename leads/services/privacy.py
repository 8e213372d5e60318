"""Privacy requests and consent (issue 21): export everything held about a person, erase a
person, record an e-mail opt-out.

A person is a lead and every lead merged into it. Export and erase each write a
`LeadAuditEntry` naming what was done (never the erased values).

Erasure removes or anonymises the personal fields, drops the personal properties of the
person's events, clears touch notes and redacts the lead in webhook deliveries, and keeps what
the reports count: the stage history (append-only), the stage, owner, team, `source` and
`country`, the company's firmographics and the scores. Reports before and after are identical.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.db import transaction
from django.utils import timezone

from leads import lifecycle
from leads.models import (
    Event,
    Lead,
    LeadAuditEntry,
    PeopleAction,
    StageTransition,
    Touch,
    WebhookDelivery,
)
from sla.models import SlaBreach

from .errors import ServiceError
from .merge import merged_lead_ids, resolve

EXPORT_VERSION = 1
# Personal fields of a lead; the optional ones exist once the identity work adds them.
PERSONAL_FIELDS = ("first_name", "last_name", "job_title")
OPTIONAL_PERSONAL_FIELDS = ("phone", "social_profiles")
# Event property keys that hold personal data (compared lower-case, `-`/` ` read as `_`).
PERSONAL_PROPERTY = re.compile(
    r"(^|_)(e_?mail|name|first_name|last_name|full_name|phone|mobile|ip|ip_address|address|street|city|zip|"
    r"postcode|user_agent|linkedin|twitter|birth|dob|ssn)($|_)"
)
URL_PROPERTIES = ("url", "referrer", "referer", "page", "landing_page")
UNSUBSCRIBE = "unsubscribe"


def _field_names() -> set[str]:
    return {f.name for f in Lead._meta.get_fields()}


def _person(lead: Lead) -> tuple[Lead, list[int]]:
    root = resolve(lead)
    return root, merged_lead_ids(root)


def _lead_data(lead: Lead) -> dict[str, Any]:
    names = [f.attname for f in Lead._meta.concrete_fields]
    return {name: getattr(lead, name) for name in names}


def _audit(lead: Lead, action: str, *, by: lifecycle.Actor, details: dict[str, Any]) -> None:
    LeadAuditEntry.objects.create(lead=lead, action=action, actor_type=by.type, actor_id=by.user_id, details=details)


def _deliveries(ids: list[int]) -> Iterable[WebhookDelivery]:
    # Deliveries carry the lead in their JSON payload, not as a key; few per lead.
    for lead_id in ids:
        yield from WebhookDelivery.objects.filter(payload__lead__id=lead_id).order_by("created_at")


def export_person(lead: Lead, *, by: lifecycle.Actor) -> dict[str, Any]:
    """Everything held about the person: the lead(s), events, touches, stage history, SLA
    breaches, scores, webhooks sent about them and the audit entries. JSON-ready values."""
    root, ids = _person(lead)
    leads = Lead.objects.filter(pk__in=ids).order_by("pk")
    data = {
        "format": "leadflow.privacy-export",
        "version": EXPORT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "person": root.pk,
        "leads": [_lead_data(item) for item in leads],
        "scores": [
            {"lead": item.pk, "fit_score": item.fit_score, "behavior_score": item.behavior_score, "at": item.scored_at}
            for item in leads
        ],
        "events": list(
            Event.objects.filter(lead_id__in=ids)
            .order_by("occurred_at", "id")
            .values("id", "lead_id", "type", "occurred_at", "properties", "event_id", "received_at")
        ),
        "touches": list(
            Touch.objects.filter(lead_id__in=ids)
            .order_by("at", "id")
            .values("id", "lead_id", "kind", "outcome", "note", "at", "user__username")
        ),
        "stage_history": list(
            StageTransition.objects.filter(lead_id__in=ids)
            .order_by("at", "id")
            .values(
                "id",
                "lead_id",
                "from_stage",
                "to_stage",
                "at",
                "actor_type",
                "reason",
                "note",
                "fit_score",
                "behavior_score",
                "bant",
            )
        ),
        "sla_breaches": list(
            SlaBreach.objects.filter(lead_id__in=ids).order_by("id").values("id", "lead_id", "clock", "due_at")
        ),
        "webhooks_sent": [
            {
                "id": str(d.id),
                "event": d.event,
                "status": d.status,
                "created_at": d.created_at,
                "delivered_at": d.delivered_at,
                "url": d.subscription.url,
                "payload": d.payload,
            }
            for d in _deliveries(ids)
        ],
        "audit": list(
            LeadAuditEntry.objects.filter(lead_id__in=ids)
            .order_by("at", "id")
            .values("lead_id", "action", "at", "details")
        ),
    }
    with transaction.atomic():
        _audit(root, PeopleAction.PRIVACY_EXPORT, by=by, details={"leads": ids})
    return data


def _clean_url(value: Any) -> Any:
    if not isinstance(value, str) or "?" not in value and "#" not in value:
        return value
    parts = urlsplit(value)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def scrub_properties(properties: Any, *, identifiers: set[str]) -> Any:
    """Event properties without personal keys, URL query strings, or values naming the person."""
    if not isinstance(properties, dict):
        return {}
    clean: dict[str, Any] = {}
    for key, value in properties.items():
        normal = re.sub(r"[-\s]", "_", str(key).lower())
        if PERSONAL_PROPERTY.search(normal):
            continue
        if normal in URL_PROPERTIES:
            value = _clean_url(value)
        if isinstance(value, str) and any(ident and ident in value.lower() for ident in identifiers):
            continue
        if isinstance(value, dict):
            value = scrub_properties(value, identifiers=identifiers)
        clean[key] = value
    return clean


def _empty_value(name: str, current: Any) -> Any:
    """What an erased optional field holds: NULL where allowed, else an empty value of its kind."""
    if getattr(Lead._meta.get_field(name), "null", False):
        return None
    return type(current)() if isinstance(current, (list, dict)) else ""


def _anonymised_email(lead: Lead) -> str | None:
    if Lead._meta.get_field("email").null:
        return None
    return f"erased-{lead.pk}@erased.invalid"


@transaction.atomic
def erase_person(lead: Lead, *, by: lifecycle.Actor) -> dict[str, Any]:
    """Erase the person (the lead and every lead merged into it). Idempotent: erasing twice
    changes nothing more and records one more audit entry."""
    root, ids = _person(lead)
    leads = list(Lead.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    now = timezone.now()
    identifiers: set[str] = set()
    names = _field_names()
    optional = [name for name in OPTIONAL_PERSONAL_FIELDS if name in names]
    for item in leads:
        for value in (item.email, item.first_name, item.last_name, *(getattr(item, n) for n in optional)):
            if isinstance(value, str) and len(value) >= 3 and not item.erased_at:
                identifiers.add(value.lower())
    for item in leads:
        changes: dict[str, Any] = dict.fromkeys(PERSONAL_FIELDS, "")
        for name in optional:
            changes[name] = _empty_value(name, getattr(item, name))
        changes.update(email=_anonymised_email(item), external_id=None, attributes={}, erased_at=item.erased_at or now)
        changes.update(email_opt_out=True, email_opt_out_at=item.email_opt_out_at or now, email_opt_out_source="erased")
        Lead.objects.filter(pk=item.pk).update(**changes, updated_at=now)
    events = 0
    for event in Event.objects.filter(lead_id__in=ids).only("id", "properties"):
        clean = scrub_properties(event.properties, identifiers=identifiers)
        if clean != event.properties:
            Event.objects.filter(pk=event.pk).update(properties=clean)
            events += 1
    touches = Touch.objects.filter(lead_id__in=ids).exclude(note="").update(note="")
    redacted = 0
    for delivery in _deliveries(ids):
        body = dict(delivery.payload)
        body["lead"] = {**body.get("lead", {}), "email": None, "first_name": "", "last_name": "", "external_id": None}
        WebhookDelivery.objects.filter(pk=delivery.pk).update(payload=body)
        redacted += 1
    details = {
        "leads": ids,
        "fields": [*PERSONAL_FIELDS, *optional, "email", "external_id", "attributes"],
        "events_scrubbed": events,
        "touch_notes_cleared": touches,
        "webhook_payloads_redacted": redacted,
    }
    _audit(root, PeopleAction.ERASE, by=by, details=details)
    return details


def set_email_opt_out(lead: Lead, *, opt_out: bool, by: lifecycle.Actor, source: str) -> Lead:
    """Record the person's e-mail consent (on the lead it stands for) and audit it."""
    root = resolve(lead)
    if root.erased_at is not None and not opt_out:
        raise ServiceError(
            "An erased person cannot opt in again.", code="validation_error", fields={"email_opt_out": ["Erased."]}
        )
    with transaction.atomic():
        if root.email_opt_out != opt_out:
            now = timezone.now()
            root.email_opt_out, root.email_opt_out_at, root.email_opt_out_source = opt_out, now, source
            root.save(update_fields=["email_opt_out", "email_opt_out_at", "email_opt_out_source", "updated_at"])
            action = PeopleAction.OPT_OUT if opt_out else PeopleAction.OPT_IN
            _audit(root, action, by=by, details={"source": source})
    return root


def record_unsubscribes(rows: Iterable[tuple[Any, ...]]) -> int:
    """Opt out the leads of newly stored `unsubscribe` events (rows as `ingest` stores them:
    lead id, type, ...). Returns how many leads changed."""
    lead_ids = sorted({row[0] for row in rows if row[1] == UNSUBSCRIBE})
    if not lead_ids:
        return 0
    now = timezone.now()
    changed = list(Lead.objects.filter(pk__in=lead_ids, email_opt_out=False).values_list("pk", flat=True))
    if changed:
        Lead.objects.filter(pk__in=changed).update(
            email_opt_out=True, email_opt_out_at=now, email_opt_out_source=UNSUBSCRIBE, updated_at=now
        )
        LeadAuditEntry.objects.bulk_create(
            LeadAuditEntry(
                lead_id=pk,
                action=PeopleAction.OPT_OUT,
                at=now,
                actor_type=lifecycle.SYSTEM.type,
                details={"source": UNSUBSCRIBE},
            )
            for pk in changed
        )
    return len(changed)
