"""Webhooks: subscriptions, an outbox written in the transition's transaction, signing, SSRF guard.

The outbox row is written by a receiver of `leads.signals.stage_changed`, which the transitions
module sends inside its transaction: the row commits with the stage change or not at all. The
Celery task is only enqueued after commit; if the broker is down then, the row stays pending and
`leads.tasks.redeliver_outbox` (beat, every minute) enqueues it later, so nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.dispatch import receiver
from django.utils import timezone

from .models import Lead, Stage
from .row_versions import unless_changed
from .signals import stage_changed

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-LeadFlow-Signature"
GIVE_UP_AFTER = dt.timedelta(hours=24)
# Consecutive failed attempts after which a subscription is shown as failing in the admin.
FAILING_AFTER = 5


class WebhookEvent(models.TextChoices):
    MQL = "lead.mql", "Lead became MQL"
    SAL = "lead.sal", "Lead accepted (SAL)"
    SQL = "lead.sql", "Lead qualified (SQL)"
    RECYCLED = "lead.recycled", "Lead recycled"
    DISQUALIFIED = "lead.disqualified", "Lead disqualified"
    SLA_BREACHED = "sla.breached", "SLA breached"


STAGE_EVENTS = {
    Stage.MQL: WebhookEvent.MQL,
    Stage.SAL: WebhookEvent.SAL,
    Stage.SQL: WebhookEvent.SQL,
    Stage.RECYCLED: WebhookEvent.RECYCLED,
    Stage.DISQUALIFIED: WebhookEvent.DISQUALIFIED,
}


def _new_secret() -> str:
    return secrets.token_hex(24)


class WebhookSubscription(models.Model):
    url = models.URLField(max_length=500)
    events = models.JSONField(
        default=list, help_text="Event names, e.g. [\"lead.mql\", \"lead.sal\"]."
    )
    secret = models.CharField(
        max_length=128, default=_new_secret,
        help_text="Shared secret for the X-LeadFlow-Signature HMAC.",
    )
    active = models.BooleanField(default=True)
    failing = models.BooleanField(
        default=False, help_text="Set after repeated failed deliveries; cleared by a success."
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def clean(self) -> None:
        check_url(self.url)
        unknown = sorted(set(self.events) - set(WebhookEvent.values))
        if unknown:
            raise ValidationError({"events": f"Unknown events: {', '.join(unknown)}."})


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    GAVE_UP = "gave_up", "Gave up after 24 hours"


class WebhookDelivery(models.Model):
    """The outbox: one row per event per subscription; its UUID is the delivery id receivers see."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker's claim on the row, so two workers never post the same delivery at once.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="webhook_pending_idx",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription.url} ({self.status})"


class WebhookAttempt(models.Model):
    """The delivery log: every POST tried, with the receiver's answer."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at"]


# --- Signing and the SSRF guard --------------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
        or ip.is_multicast or ip.is_unspecified
    )


def check_url(url: str) -> None:
    """Refuse non-HTTP URLs, and under production settings URLs resolving to private networks
    (a webhook must not become a way to reach the internal network)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": "Webhook URLs must be http:// or https:// with a host."})
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationError({"url": f"Cannot resolve host '{parts.hostname}'."}) from exc
    if any(_is_private(info[4][0]) for info in infos):
        raise ValidationError(
            {"url": "This URL resolves to a private or loopback address, which is not allowed."}
        )


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
        rows.append(
            WebhookDelivery(
                id=delivery_id, subscription=sub, event=event, payload=payload_for(delivery_id)
            )
        )
    WebhookDelivery.objects.bulk_create(rows)
    ids = [str(row.id) for row in rows]
    transaction.on_commit(lambda: schedule(ids))
    return rows


def schedule(ids: list[str]) -> None:
    """Hand deliveries to Celery; a broker outage is fine, the beat task picks them up later."""
    from .tasks import deliver_webhook

    for delivery_id in ids:
        try:
            deliver_webhook.apply_async((delivery_id,), retry=False)
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
