"""Webhook delivery: POST the signed body, back off exponentially, give up after 24 hours.

Both tasks are safe to run twice or in two workers at once: a delivery is claimed with a
conditional UPDATE (only one worker wins the claim) before anything is posted, and a delivered
row is never posted again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import socket
import ssl
import time
from urllib.parse import urlsplit

from celery import shared_task
from django.core.exceptions import ValidationError
from django.db.models import F, Q
from django.utils import timezone

from .models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookSubscription
from .services import import_jobs
from .url_guard import resolve
from .webhooks import FAILING_AFTER, GIVE_UP_AFTER, SIGNATURE_HEADER, encode, schedule, sign

TIMEOUT_SECONDS = 10
CLAIM_FOR = dt.timedelta(seconds=60)
FIRST_BACKOFF = dt.timedelta(seconds=30)
MAX_BACKOFF = dt.timedelta(hours=1)


def backoff(attempts: int) -> dt.timedelta:
    """30 s, 1 min, 2 min, 4 min ... capped at an hour."""
    return min(FIRST_BACKOFF * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def _claim(delivery_id: str, now: dt.datetime) -> bool:
    return bool(
        WebhookDelivery.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            pk=delivery_id,
            status=DeliveryStatus.PENDING,
        ).update(claimed_until=now + CLAIM_FOR)
    )


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address checked by `url_guard.resolve`, not to whatever the host name
    resolves to a moment later; the Host header stays the URL's host."""

    def __init__(self, host: str, port: int | None, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As `_PinnedHTTPConnection`, with TLS verified against the URL's host name."""

    def __init__(self, host: str, port: int | None, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _connection(url: str, addresses: list[str] | None) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    assert parts.hostname is not None  # the caller has passed `url` through url_guard.resolve
    https = parts.scheme == "https"
    if addresses is None:  # WEBHOOKS_ALLOW_PRIVATE: any address, resolved by the connection
        conn_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
        return conn_class(parts.hostname, parts.port, timeout=TIMEOUT_SECONDS)
    pinned = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    return pinned(parts.hostname, parts.port, address=addresses[0], timeout=TIMEOUT_SECONDS)


def _post(url: str, body: bytes, headers: dict[str, str], *, addresses: list[str] | None) -> tuple[int | None, str]:
    # http.client keeps header names as written (urllib would turn them into X-leadflow-...).
    parts = urlsplit(url)
    conn = _connection(url, addresses)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", path, body=body, headers={**headers, "Content-Length": str(len(body))})
        response = conn.getresponse()
        response.read(65536)
        status = response.status
        return status, "" if 200 <= status < 300 else f"HTTP {status}"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return None, str(exc)[:500] or type(exc).__name__
    finally:
        conn.close()


@shared_task(name="leads.tasks.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_id: str) -> str:
    now = timezone.now()
    if not _claim(delivery_id, now):
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    sub = delivery.subscription
    body = encode(delivery.payload)
    try:
        # Resolved and checked at delivery, and the connection made to the checked address:
        # DNS may have changed since the subscription was saved, or change after this check.
        addresses = resolve(sub.url)
        started = time.monotonic()
        status_code, error = _post(
            sub.url,
            body,
            {
                "Content-Type": "application/json",
                "User-Agent": "LeadFlow-Webhooks/1",
                SIGNATURE_HEADER: sign(body, sub.secret, timestamp=int(time.time())),
                "X-LeadFlow-Event": delivery.event,
                "X-LeadFlow-Delivery": str(delivery.pk),
            },
            addresses=addresses,
        )
        duration = int((time.monotonic() - started) * 1000)
    except ValidationError as exc:
        status_code, error, duration = None, "; ".join(exc.messages), 0
    done = timezone.now()
    WebhookAttempt.objects.create(
        delivery=delivery, at=done, status_code=status_code, error=error, duration_ms=duration
    )
    attempts = delivery.attempts + 1
    if status_code is not None and 200 <= status_code < 300:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.DELIVERED,
            attempts=attempts,
            delivered_at=done,
            last_status_code=status_code,
            last_error="",
            claimed_until=None,
        )
        WebhookSubscription.objects.filter(pk=sub.pk).update(consecutive_failures=0, failing=False)
        return "delivered"
    gave_up = done - delivery.created_at >= GIVE_UP_AFTER
    retry_at = done + backoff(attempts)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.GAVE_UP if gave_up else DeliveryStatus.PENDING,
        attempts=attempts,
        next_attempt_at=retry_at,
        last_status_code=status_code,
        last_error=error,
        claimed_until=None,
    )
    WebhookSubscription.objects.filter(pk=sub.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    WebhookSubscription.objects.filter(pk=sub.pk, consecutive_failures__gte=FAILING_AFTER).update(failing=True)
    if gave_up:
        return "gave_up"
    # Any broker error: the beat task re-enqueues the delivery when the broker is back.
    with contextlib.suppress(Exception):
        deliver_webhook.apply_async((str(delivery.pk),), eta=retry_at, retry=False)
    return "retry"


@shared_task(name="leads.tasks.redeliver_outbox", ignore_result=True)
def redeliver_outbox(limit: int = 1000) -> int:
    """Enqueue pending deliveries that are due and not claimed: the ones whose task was lost
    (broker down at commit, worker killed) or whose retry is due. Runs every minute."""
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    # Rows past the 24-hour window without a successful attempt are closed here too.
    WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, created_at__lt=now - GIVE_UP_AFTER).update(
        status=DeliveryStatus.GAVE_UP
    )
    schedule([str(pk) for pk in due])
    return len(due)


@shared_task(name="leads.tasks.run_import_job", ignore_result=True)
def run_import_job(job_id: str) -> str:
    """A large upload to the import API; claimed once, so a redelivered message does nothing."""
    return import_jobs.run_job(job_id)
