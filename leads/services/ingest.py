"""Behaviour events in (SPEC section 6, `POST /api/v1/events/`): validate a batch, find or create
its leads, store the events once each, and hand the touched leads to scoring.

The API, a task or a command passes the decoded items (dicts as the integration sent them); the
batch is all or nothing, so a refusal (`ServiceError`, code `validation_error`, `fields.items`
keyed by index) means nothing was stored.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Sequence
from typing import Any, TypedDict

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from scoring import services as scoring

from ..bulk import concrete_field, insert_columns, insert_objects
from ..models import Event, Lead
from .errors import ServiceError
from .merge import merged_redirects
from .privacy import record_unsubscribes

log = logging.getLogger(__name__)


class IngestResult(TypedDict):
    received: int
    created: int
    duplicates: int
    leads_created: int


# Lead ids are bigints: a larger number can name no lead, and on SQLite it overflows the query.
MAX_ID = 2**63 - 1


def _bad_value(value: Any, path: str = "") -> str | None:
    """Where in `value` (a decoded JSON property tree) something cannot be stored: a number that
    is not finite (`1e999` decodes to infinity; PostgreSQL refuses it in JSON) or a NUL
    character (PostgreSQL refuses it in text and JSON). None when it is all storable."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path or 'value'}: numbers must be finite."
    if isinstance(value, str) and "\x00" in value:
        return f"{path or 'value'}: NUL characters are not allowed."
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                return f"{path or 'key'}: NUL characters are not allowed in keys."
            found = _bad_value(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _bad_value(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _validate_lead_ref(ref: Any) -> list[str]:
    if not isinstance(ref, dict) or not any(ref.get(k) not in (None, "") for k in ("id", "email", "external_id")):
        return [_("Give an object with one of id, email or external_id.")]
    bad = _bad_value(ref)
    if bad:
        return [bad]
    lead_id = ref.get("id")
    if lead_id is not None and (
        not isinstance(lead_id, int) or isinstance(lead_id, bool) or not 1 <= lead_id <= MAX_ID
    ):
        return [f"id must be an integer from 1 to {MAX_ID}."]
    email = ref.get("email")
    if email is not None:
        # As `/leads/` validates it (LeadSerializer's EmailField), so an event cannot create a
        # lead the leads endpoint would refuse.
        try:
            if not isinstance(email, str) or len(email) > 254 or email != email.strip():
                raise DjangoValidationError("invalid")
            validate_email(email)
        except DjangoValidationError:
            return ["email is not a valid address."]
    ext = ref.get("external_id")
    if ext is not None and (not isinstance(ext, str) or len(ext) > 255):
        return ["external_id must be a string of at most 255 characters."]
    return []


def _validate_event(item: Any, now: dt.datetime) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(item, dict):
        return None, {"non_field_errors": [_("Expected an object.")]}
    ref = item.get("lead")
    lead_errors = _validate_lead_ref(ref)
    if lead_errors:
        errors["lead"] = lead_errors
    kind = item.get("type")
    if not isinstance(kind, str) or not kind.strip() or len(kind) > 100:
        errors["type"] = ["Required: a string of 1 to 100 characters."]
    elif "\x00" in kind:
        errors["type"] = ["NUL characters are not allowed."]
    occurred = item.get("occurred_at")
    if occurred is None:
        occurred_at = now
    else:
        occurred_at = None
        if isinstance(occurred, str) and "\x00" not in occurred:
            try:
                occurred_at = parse_datetime(occurred)
            except ValueError:
                occurred_at = None
        if occurred_at is None:
            errors["occurred_at"] = ["Use an ISO 8601 date-time."]
        else:
            if timezone.is_naive(occurred_at):
                occurred_at = timezone.make_aware(occurred_at, dt.UTC)
            # An event from the future would never decay: its points would count for good.
            limit = settings.EVENTS_MAX_FUTURE_MINUTES
            if occurred_at > now + dt.timedelta(minutes=limit):
                errors["occurred_at"] = [f"At most {limit} minutes in the future."]
    props = item.get("properties", {})
    if props is None:
        props = {}
    if not isinstance(props, dict):
        errors["properties"] = [_("Must be an object.")]
    else:
        bad = _bad_value(props)
        if bad:
            errors["properties"] = [bad]
    event_id = item.get("event_id")
    if event_id is None:
        event_id = uuid.uuid4().hex
    elif not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        errors["event_id"] = [_("Must be a string of 1 to 255 characters.")]
    elif "\x00" in event_id:
        errors["event_id"] = ["NUL characters are not allowed."]
    if errors:
        return None, errors
    assert isinstance(kind, str)  # else errors["type"] is set
    return {
        "ref": ref,
        "type": kind.strip(),
        "occurred_at": occurred_at,
        "properties": props,
        "event_id": event_id,
    }, {}


EventRow = tuple  # values of EVENT_COLUMNS, in that order
EVENT_COLUMNS = ("lead", "type", "occurred_at", "properties", "event_id", "received_at")


def _insert_events(rows: list[EventRow]) -> list[EventRow]:
    """Insert, skipping (lead, event_id) pairs already stored; returns the rows actually
    inserted. Plain tuples, not Event instances: building a thousand model objects cost more
    than the insert. An event_id deduplicates within its lead only: two integrations (or two
    leads) may well use the same ids."""
    if connection.vendor == "postgresql":
        # One array per column: psycopg2 adapts a list of ints, strings or datetimes in C, where
        # a VALUES row per event went through Python's mogrify a thousand times.
        fields = [concrete_field(Event, name) for name in EVENT_COLUMNS]
        kept = set(
            insert_columns(
                Event,
                fields,
                list(zip(*rows, strict=False)),
                ignore_conflicts=True,
                returning=(Event._meta.get_field("lead"), Event._meta.get_field("event_id")),
            )
        )
        return [row for row in rows if (row[0], row[4]) in kept]
    existing = set(
        Event.objects.filter(lead_id__in={row[0] for row in rows}, event_id__in=[row[4] for row in rows]).values_list(
            "lead_id", "event_id"
        )
    )
    fresh = [row for row in rows if (row[0], row[4]) not in existing]
    Event.objects.bulk_create(
        [
            Event(
                lead_id=lead_id,
                type=kind,
                occurred_at=occurred_at,
                properties=props,
                event_id=event_id,
                received_at=received_at,
            )
            for lead_id, kind, occurred_at, props, event_id, received_at in fresh
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    return fresh


DEADLOCK_RETRIES = 3


def ingest_events(items: Sequence[Any], *, now: dt.datetime | None = None) -> IngestResult:
    """Validate in bulk, resolve leads in three queries, create unknown emails in bulk, insert
    events with `ON CONFLICT DO NOTHING` on `event_id`, then tell scoring, all in one transaction.

    `items` are the events as sent (any shape; a bad one is reported, never trusted); `now` is
    when they were received, and the time of an event that gives none. Raises `ServiceError`
    naming every invalid item, or every item whose lead is unknown, and then stores nothing:
    an integration resends the corrected batch whole.

    Batches from concurrent clients share leads. Each locks its existing leads in id order first,
    so two batches queue instead of deadlocking; should the database still pick one as a
    deadlock victim (another writer on the same leads), the batch is retried whole, which
    changes nothing twice: event ids are fixed before the first try and deduplicated on insert.
    """
    now = now or timezone.now()
    parsed: list[dict[str, Any]] = []
    item_errors: dict[str, Any] = {}
    for index, item in enumerate(items):
        data, errors = _validate_event(item, now)
        if errors:
            item_errors[str(index)] = errors
        else:
            parsed.append(data)  # type: ignore[arg-type]
    if item_errors:
        raise ServiceError(
            ngettext(
                "%(count)s invalid event at index %(indexes)s; nothing stored.",
                "%(count)s invalid events at index %(indexes)s; nothing stored.",
                len(item_errors),
            )
            % {"count": len(item_errors), "indexes": ", ".join(list(item_errors)[:20])},
            code="validation_error",
            fields={"items": item_errors},
        )
    for attempt in range(DEADLOCK_RETRIES + 1):
        try:
            return _store_events(items, parsed, now)
        except OperationalError as exc:
            if attempt == DEADLOCK_RETRIES or getattr(exc.__cause__, "pgcode", None) != "40P01":
                raise
            log.warning("Event batch chosen as a deadlock victim; retrying (%d)", attempt + 1)
    raise AssertionError("unreachable")


def _store_events(items: Sequence[Any], parsed: list[dict[str, Any]], now: dt.datetime) -> IngestResult:
    ids = {d["ref"]["id"] for d in parsed if d["ref"].get("id") is not None}
    exts = {d["ref"]["external_id"] for d in parsed if d["ref"].get("id") is None and d["ref"].get("external_id")}
    emails = {d["ref"]["email"].lower() for d in parsed if d["ref"].get("email")}
    with transaction.atomic():
        known_ids = set(Lead.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
        by_ext = dict(Lead.objects.filter(external_id__in=exts).values_list("external_id", "pk")) if exts else {}
        by_email = dict(Lead.objects.filter(email__in=emails).values_list("email", "pk")) if emails else {}
        # Events for a merged duplicate (by its id, e-mail or external id) go to its survivor.
        redirects = merged_redirects(known_ids | set(by_ext.values()) | set(by_email.values()))
        existing = sorted(known_ids | set(by_ext.values()) | set(by_email.values()) | set(redirects.values()))
        score_later = settings.SCORING_EVENTS_ASYNC
        if existing and not score_later:
            # The row locks scoring and promotion take anyway, taken up front and in one order.
            list(Lead.objects.select_for_update(no_key=True).filter(pk__in=existing).order_by("pk").values_list("pk"))
        unknown: dict[str, list[str]] = {}
        to_create: dict[str, Lead] = {}
        for index, d in enumerate(parsed):
            ref = d["ref"]
            email = ref["email"].lower() if ref.get("email") else None
            if ref.get("id") is not None:
                if ref["id"] not in known_ids:
                    unknown[str(index)] = [_("No lead with id %(id)s.") % {"id": ref["id"]}]
            elif ref.get("external_id") and ref["external_id"] in by_ext:
                pass
            elif email:
                if email not in by_email and email not in to_create:
                    to_create[email] = Lead(
                        email=email,
                        external_id=ref.get("external_id") or None,
                        first_name=str(ref.get("first_name") or "")[:100],
                        last_name=str(ref.get("last_name") or "")[:100],
                        source=str(ref.get("source") or "event")[:100],
                    )
            else:
                unknown[str(index)] = [
                    _("No lead with external_id '%(external_id)s'; add an email to create it.")
                    % {"external_id": ref["external_id"]}
                ]
        if unknown:
            raise ServiceError(
                ngettext(
                    "%(count)s event refers to an unknown lead; nothing stored.",
                    "%(count)s events refer to unknown leads; nothing stored.",
                    len(unknown),
                )
                % {"count": len(unknown)},
                code="validation_error",
                fields={"items": {k: {"lead": v} for k, v in unknown.items()}},
            )
        leads_created = 0
        if to_create:
            # Sorted, so concurrent batches take the unique-index locks in one order (no deadlock).
            insert_objects(Lead, [to_create[email] for email in sorted(to_create)], ignore_conflicts=True)
            # Another request may have created some of them meanwhile: read the ids back.
            by_email.update(Lead.objects.filter(email__in=list(to_create)).values_list("email", "pk"))
            leads_created = len(to_create)
        events: dict[tuple[int, str], EventRow] = {}
        for d in parsed:
            ref = d["ref"]
            if ref.get("id") is not None:
                lead_id = ref["id"]
            elif ref.get("external_id") and ref["external_id"] in by_ext:
                lead_id = by_ext[ref["external_id"]]
            else:
                lead_id = by_email[ref["email"].lower()]
            lead_id = redirects.get(lead_id, lead_id)
            events.setdefault(
                (lead_id, d["event_id"]), (lead_id, d["type"], d["occurred_at"], d["properties"], d["event_id"], now)
            )
        fresh = _insert_events(list(events.values()))
        # An `unsubscribe` event records the person's e-mail opt-out (issue 21).
        record_unsubscribes(fresh)
        lead_ids = sorted({row[0] for row in fresh})
        if score_later:
            scoring.rescore_after_commit([*lead_ids, *(by_email[email] for email in to_create)])
        else:
            if lead_ids:
                scoring.on_events_recorded(lead_ids, now=now)
            if leads_created:
                scoring.on_lead_changed([by_email[email] for email in to_create])
    return {
        "received": len(items),
        "created": len(fresh),
        "duplicates": len(items) - len(fresh),
        "leads_created": leads_created,
    }
