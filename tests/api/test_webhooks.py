from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from kombu import pools

from leadflow.celery import app as celery_app
from leads import lifecycle
from leads.models import DeliveryStatus, Stage, WebhookDelivery, WebhookSubscription
from leads.tasks import deliver_webhook, redeliver_outbox
from tests.conftest import start_worker, stop_worker, wait_for
from tests.factories import LeadFactory


class Receiver:
    """A local HTTP endpoint recording what it is sent; answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _signed_ok(headers: dict[str, str], body: bytes, secret: str) -> bool:
    """The receiver's check, as the README shows it: t=<unix>,v1=HMAC-SHA256("<t>.<body>")."""
    import time

    fields = dict(part.split("=", 1) for part in headers["X-LeadFlow-Signature"].split(","))
    if abs(time.time() - int(fields["t"])) > 300:
        return False
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(fields["v1"], expected)


@pytest.mark.django_db
def test_manager_subscribes_and_gets_the_secret_once(as_manager, as_rep):
    response = as_manager.post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/x", "events": ["lead.mql", "lead.sal"]}, format="json"
    )
    assert response.status_code == 201, response.content
    assert len(response.json()["secret"]) >= 32
    listed = as_manager.get("/api/v1/webhooks/").json()["results"]
    assert "secret" not in listed[0]
    assert as_rep.get("/api/v1/webhooks/").status_code == 403


@pytest.mark.django_db
def test_unknown_event_name_is_a_400(as_manager):
    response = as_manager.post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/x", "events": ["lead.won"]}, format="json"
    )
    assert response.status_code == 400 and "events" in response.json()["fields"]


@pytest.mark.django_db
@override_settings(WEBHOOKS_ALLOW_PRIVATE=False)
def test_production_settings_refuse_private_and_loopback_urls(as_manager):
    for url in ("http://127.0.0.1/x", "http://10.0.0.5/x", "http://169.254.169.254/latest", "http://localhost/x"):
        response = as_manager.post("/api/v1/webhooks/", {"url": url, "events": ["lead.mql"]}, format="json")
        assert response.status_code == 400, url
        assert "url" in response.json()["fields"]
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
def test_transition_writes_signed_delivery_in_its_transaction(receiver, rep, team, django_capture_on_commit_callbacks):
    sub = WebhookSubscription.objects.create(url=receiver.url, events=["lead.sal"])
    lead = LeadFactory(stage=Stage.MQL, owner=rep, team=team)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.accept(lead, actor=lifecycle.Actor.person(rep))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    headers, body = receiver.received[0]
    assert _signed_ok(headers, body, sub.secret)
    payload = json.loads(body)
    assert payload["event"] == "lead.sal"
    assert (payload["old_stage"], payload["new_stage"]) == ("mql", "sal")
    assert payload["lead"]["id"] == lead.pk
    assert payload["delivery_id"] == str(delivery.pk)
    assert delivery.log.get().status_code == 200


@pytest.mark.django_db
def test_a_managers_subscription_edits_count_from_the_next_move(as_manager, as_rep, rep, team):
    def move(name: str, body: dict) -> list[tuple[int, str]]:
        """Make `name` on a fresh MQL through the API; the outbox rows it wrote."""
        lead = LeadFactory(stage=Stage.MQL, owner=rep, team=team)
        before = set(WebhookDelivery.objects.values_list("pk", flat=True))
        assert as_rep.post(f"/api/v1/leads/{lead.pk}/{name}/", body, format="json").status_code == 200
        return sorted(WebhookDelivery.objects.exclude(pk__in=before).values_list("subscription_id", "event"))

    accept, reject = ("accept", {}), ("reject", {"reason": "no_need"})
    assert move(*accept) == []
    created = as_manager.post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/a", "events": ["lead.sal"]}, format="json"
    )
    first = created.json()["id"]
    assert move(*accept) == [(first, "lead.sal")]
    assert move(*reject) == []

    edited = as_manager.patch(f"/api/v1/webhooks/{first}/", {"events": ["lead.recycled"]}, format="json")
    assert edited.status_code == 200, edited.content
    assert move(*accept) == []
    assert move(*reject) == [(first, "lead.recycled")]

    as_manager.patch(f"/api/v1/webhooks/{first}/", {"active": False}, format="json")
    assert move(*reject) == []
    WebhookSubscription.objects.filter(pk=first).update(active=True)  # a bulk edit sends no signal
    assert move(*reject) == [(first, "lead.recycled")]

    second = WebhookSubscription.objects.create(url="http://127.0.0.1:9/b", events=["lead.recycled"])
    assert move(*reject) == [(first, "lead.recycled"), (second.pk, "lead.recycled")]
    assert as_manager.delete(f"/api/v1/webhooks/{first}/").status_code == 204
    assert move(*reject) == [(second.pk, "lead.recycled")]


@pytest.mark.django_db
def test_refused_transition_leaves_no_outbox_row(rep, team):
    WebhookSubscription.objects.create(url="http://127.0.0.1:9/x", events=["lead.sal"])
    lead = LeadFactory(stage=Stage.SAL, owner=rep, team=team)
    with pytest.raises(lifecycle.InvalidTransition):
        lifecycle.accept(lead, actor=lifecycle.Actor.person(rep))
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_failed_delivery_backs_off_marks_subscription_failing_and_gives_up_after_a_day(rep, team):
    failing = Receiver(status=500)
    try:
        sub = WebhookSubscription.objects.create(url=failing.url, events=["lead.sal"])
        lead = LeadFactory(stage=Stage.MQL, owner=rep, team=team)
        lifecycle.accept(lead, actor=lifecycle.Actor.person(rep))  # on_commit not run in this test
        delivery = WebhookDelivery.objects.get()
        celery_app.conf.task_always_eager = False  # keep the retry from recursing in-process
        try:
            for attempt in range(1, 6):
                WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
                before = timezone.now()
                with contextlib.suppress(Exception):  # no broker for the retry here
                    deliver_webhook(str(delivery.pk))
                delivery.refresh_from_db()
                assert delivery.status == DeliveryStatus.PENDING
                assert delivery.attempts == attempt
                wait = (delivery.next_attempt_at - before).total_seconds()
                assert 30 * 2 ** (attempt - 1) <= wait < 30 * 2 ** (attempt - 1) + 5
            sub.refresh_from_db()
            assert sub.failing and sub.consecutive_failures == 5
            WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - dt.timedelta(hours=25))
            deliver_webhook(str(delivery.pk))
        finally:
            celery_app.conf.task_always_eager = True
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.GAVE_UP
        assert len(failing.received) == 6
    finally:
        failing.close()


@pytest.mark.django_db
def test_delivery_is_posted_once_even_if_run_twice(receiver, rep, team):
    WebhookSubscription.objects.create(url=receiver.url, events=["lead.sal"])
    lead = LeadFactory(stage=Stage.MQL, owner=rep, team=team)
    lifecycle.accept(lead, actor=lifecycle.Actor.person(rep))
    delivery = WebhookDelivery.objects.get()
    assert deliver_webhook(str(delivery.pk)) == "delivered"
    assert deliver_webhook(str(delivery.pk)) == "skipped"
    assert redeliver_outbox() == 0
    assert len(receiver.received) == 1


def _point_app_at(broker: str) -> None:
    """Make this process's Celery app publish to `broker` (its pools cache the old URL)."""
    celery_app.conf.broker_url = broker
    celery_app.conf.broker_write_url = broker
    celery_app.conf.broker_read_url = broker
    # Drop pooled connections (they may point at a stopped server); new ones are made on use.
    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    wait_for(lambda: _ping(redis, port), timeout=15, what="redis-server to start")
    return proc


def _ping(redis_module, port: int) -> bool:
    try:
        return bool(redis_module.Redis(port=port, socket_timeout=0.5).ping())
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.e2e
def test_worker_delivers_mql_and_sal_and_a_delivery_made_while_the_broker_was_down(transactional_db, team, rep):
    port = _free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    redis_proc = _start_redis(port)
    receiver = Receiver()
    previous_broker = celery_app.conf.broker_url
    _point_app_at(broker)
    worker = None
    try:
        sub = WebhookSubscription.objects.create(url=receiver.url, events=["lead.mql", "lead.sal"])
        lead = LeadFactory(stage=Stage.LEAD, team=team, country="US")
        connection.close()
        worker = start_worker(extra_env={"CELERY_BROKER_URL": broker})
        lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM, reason="hand_raiser")
        wait_for(lambda: len(receiver.received) >= 1, timeout=60, what="lead.mql delivery")
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        lead.refresh_from_db()
        owner = lead.owner
        lifecycle.accept(lead, actor=lifecycle.Actor.person(owner))
        sal = WebhookDelivery.objects.get(event="lead.sal")
        assert sal.status == DeliveryStatus.PENDING
        redis_proc = _start_redis(port)
        _point_app_at(broker)
        assert redeliver_outbox() >= 1
        wait_for(lambda: len(receiver.received) >= 2, timeout=90, what="lead.sal delivery after the broker came back")
        events = [json.loads(body)["event"] for _, body in receiver.received]
        assert events == ["lead.mql", "lead.sal"]
        assert all(_signed_ok(h, b, sub.secret) for h, b in receiver.received)
        wait_for(
            lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 2,
            timeout=30,
            what="both deliveries marked delivered",
        )
    finally:
        if worker is not None:
            stop_worker(worker)
        _point_app_at(previous_broker)
        receiver.close()
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
