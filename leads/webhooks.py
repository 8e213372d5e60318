"""Webhooks: subscriptions, an outbox written in the transition's transaction, signing, SSRF guard.

The outbox row is written by a receiver of `leads.signals.stage_changed`, which the lifecycle
module sends inside its transaction: the row commits with the stage change or not at all. The
Celery task is only enqueued after commit; if the broker is down then, the row stays pending and
`leads.tasks.redeliver_outbox` (beat, every minute) enqueues it later, so nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import uuid
from typing import Any

from django.db import connection, transaction
from django.dispatch import receiver
from django.utils import timezone

from leadflow.celery import task as celery_task
from sla.signals import sla_breached as sla_breached_signal

from .models import (
    Lead,
    Stage,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from .row_versions import unless_changed
from .signals import stage_changed, stage_changed_batch

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-LeadFlow-Signature"
GIVE_UP_AFTER = dt.timedelta(hours=24)
# Consecutive failed attempts after which a subscription is shown as failing in the admin.
FAILING_AFTER = 5


STAGE_EVENTS: dict[str, WebhookEvent] = {
    Stage.MQL: WebhookEvent.MQL,
    Stage.SAL: WebhookEvent.SAL,
    Stage.SQL: WebhookEvent.SQL,
    Stage.RECYCLED: WebhookEvent.RECYCLED,
    Stage.DISQUALIFIED: WebhookEvent.DISQUALIFIED,
}


# --- Signing and the SSRF guard --------------------------------------------------------------


def sign(body: bytes, secret: str, *, timestamp: int) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as Stripe signs: the time is
    signed with the body, so a receiver that refuses old timestamps (README: five minutes)
    cannot be sent a captured delivery again."""
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def verify(header: str, body: bytes, secret: str, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (README has the same in a few lines): the HMAC matches and the
    timestamp is within `tolerance` seconds of `now`."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(body, secret, timestamp=timestamp).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


# --- The outbox --------------------------------------------------------------------------------


def lead_payload(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.pk,
        "external_id": lead.external_id,
        "email": lead.email,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "company": lead.company,
        "stage": lead.stage,
        "owner": lead.owner.username if lead.owner_id and lead.owner else None,
        "fit_score": lead.fit_score,
        "behavior_score": lead.behavior_score,
    }


# Per process and database: the row versions of the active subscriptions last read, and those
# subscriptions.
_SUBSCRIPTIONS_SEEN: dict[Any, tuple[Any, Any]] = {}


def _active_subscriptions() -> list[WebhookSubscription]:
    """The active subscriptions. On PostgreSQL, every move asks only for their row versions
    (``xmin``, ``ctid``: any edit, by any process, writes a new one) and reads the rows again
    only when those changed, so a manager's edit counts from the next move on."""
    if connection.vendor != "postgresql":
        return list(WebhookSubscription.objects.filter(active=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(concat_ws(':', id, xmin, ctid), ',' ORDER BY id)"
            f" FROM {connection.ops.quote_name(WebhookSubscription._meta.db_table)} WHERE active"
        )
        row_versions = cursor.fetchone()[0]
    return unless_changed(
        _SUBSCRIPTIONS_SEEN, row_versions, lambda: list(WebhookSubscription.objects.filter(active=True))
    )


def _subscribers(event: str) -> list[WebhookSubscription]:
    # Subscriptions are few; filtering the JSON list in Python works on SQLite and PostgreSQL.
    return [s for s in _active_subscriptions() if event in s.events]


def enqueue(event: str, payload_for: Any) -> list[WebhookDelivery]:
    """Write outbox rows for `event` (inside the caller's transaction) and enqueue their delivery
    once it commits. `payload_for(delivery_id)` builds the body."""
    subs = _subscribers(event)
    if not subs:
        return []
    rows = []
    for sub in subs:
        delivery_id = uuid.uuid4()
        rows.append(WebhookDelivery(id=delivery_id, subscription=sub, event=event, payload=payload_for(delivery_id)))
    WebhookDelivery.objects.bulk_create(rows)
    ids = [str(row.id) for row in rows]
    transaction.on_commit(lambda: schedule(ids))
    return rows


def schedule(ids: list[str]) -> None:
    """Hand deliveries to Celery; a broker outage is fine, the beat task picks them up later."""
    deliver = celery_task("leads.tasks.deliver_webhook")
    for delivery_id in ids:
        try:
            deliver.apply_async((delivery_id,), retry=False)
        except Exception:  # noqa: BLE001 - any broker error: the outbox row stays pending
            log.warning("Broker unavailable; webhook delivery %s left for redelivery", delivery_id)
            return


@receiver(stage_changed, dispatch_uid="leads.webhooks.outbox")
def write_outbox(sender: Any, *, transition: Any, lead: Lead, **kwargs: Any) -> None:
    event = STAGE_EVENTS.get(transition.to_stage)
    if event is None or transition.from_stage == transition.to_stage:
        return

    def payload_for(delivery_id: uuid.UUID) -> dict[str, Any]:
        return {
            "event": str(event),
            "delivery_id": str(delivery_id),
            "occurred_at": transition.at.isoformat(),
            "old_stage": transition.from_stage,
            "new_stage": transition.to_stage,
            "reason": transition.reason,
            "lead": lead_payload(lead),
        }

    enqueue(str(event), payload_for)


def sla_breached(*, lead: Lead, clock: str, due_at: dt.datetime, action: str) -> None:
    """Outbox rows for `sla.breached` (for the SLA sweep to call inside its transaction)."""

    def payload_for(delivery_id: uuid.UUID) -> dict[str, Any]:
        return {
            "event": WebhookEvent.SLA_BREACHED.value,
            "delivery_id": str(delivery_id),
            "occurred_at": timezone.now().isoformat(),
            "old_stage": lead.stage,
            "new_stage": lead.stage,
            "clock": clock,
            "due_at": due_at.isoformat(),
            "action": action,
            "lead": lead_payload(lead),
        }

    enqueue(WebhookEvent.SLA_BREACHED.value, payload_for)


# --- Batches: the set-based paths (batch promotion, the SLA sweep) send one signal per batch ---
# A batch of 250,000 breaches must not cost 250,000 subscription look-ups when nobody
# subscribes, so each receiver asks once per batch whether anyone listens for the events at
# hand, and only then writes outbox rows row by row.


def _subscribed(events: set[str]) -> bool:
    return any(
        events & set(events_of)
        for events_of in WebhookSubscription.objects.filter(active=True).values_list("events", flat=True)
    )


@receiver(stage_changed_batch, dispatch_uid="leads.webhooks.batch_to_outbox")
def batch_to_outbox(sender: Any, *, transitions: Any, to_stages: set[str] | None = None, **kwargs: Any) -> None:
    stages = to_stages if to_stages is not None else set(transitions.values_list("to_stage", flat=True).distinct())
    events = {str(STAGE_EVENTS[s]) for s in stages if s in STAGE_EVENTS}
    if not events or not _subscribed(events):
        return
    for transition in transitions.select_related("lead", "lead__owner"):
        write_outbox(sender, transition=transition, lead=transition.lead)


@receiver(sla_breached_signal, dispatch_uid="leads.webhooks.breaches_to_outbox")
def breaches_to_outbox(sender: Any, *, breaches: Any, **kwargs: Any) -> None:
    if not _subscribed({WebhookEvent.SLA_BREACHED.value}):
        return
    for breach in breaches.select_related("lead", "lead__owner"):
        sla_breached(lead=breach.lead, clock=breach.clock, due_at=breach.due_at, action=breach.action)
