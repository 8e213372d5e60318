"""Fault suite (issue 22): Redis stopped, a worker killed mid-rescore, PostgreSQL restarted,
against a real gunicorn, real Celery workers and the private servers of `tests/faults/run.py`.
Each scenario adds a row to the report table run.py prints."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.db import connections, transaction
from django.db.models import Count
from django.utils import timezone

from leads.models import DeliveryStatus, Event, Lead, Stage, StageTransition, WebhookDelivery, WebhookSubscription
from leads.tasks import redeliver_outbox
from leads.tokens import issue_token
from scoring import services
from scoring.models import RescoreRequest
from tests.conftest import wait_for
from tests.factories import LeadFactory
from tests.scoring.conftest import client_for

from .conftest import Api, report

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


class Receiver:
    """A webhook receiver on a free local port that records delivery ids."""

    def __init__(self) -> None:
        self.deliveries: list[str] = []
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(self.headers.get("X-LeadFlow-Delivery", ""))
                self.send_response(204)
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


def _activate(marketer, manager, definition_json) -> None:
    created = client_for(marketer).post("/api/v1/definitions/", definition_json, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert client_for(marketer).post(f"/api/v1/definitions/{pk}/sign/").status_code == 200
    assert client_for(manager).post(f"/api/v1/definitions/{pk}/sign/").status_code == 200
    assert client_for(marketer).post(f"/api/v1/definitions/{pk}/activate/").status_code == 200


def _transitions_to_mql(lead_ids: list[int]) -> tuple[int, int]:
    """(lost, duplicated): qualifying leads with no MQL transition, and extra MQL transitions."""
    counts = dict(
        StageTransition.objects.filter(lead_id__in=lead_ids, to_stage=Stage.MQL)
        .values_list("lead_id")
        .annotate(n=Count("id"))
        .values_list("lead_id", "n")
    )
    lost = sum(1 for pk in lead_ids if pk not in counts)
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    return lost, duplicated


def _hand_raisers(n: int, prefix: str) -> list[Lead]:
    return [
        LeadFactory(email=f"{prefix}{i}@acme.example", company="Acme", employees=500, job_title="VP Sales")
        for i in range(n)
    ]


def test_with_redis_stopped_the_api_answers_and_webhooks_go_out_after_recovery(
    processes, private_services, marketer, manager, team, definition_json, receiver
):
    _, redis = private_services
    _activate(marketer, manager, definition_json)
    WebhookSubscription.objects.create(url=receiver.url, events=["lead.mql"])
    leads = _hand_raisers(20, "outage")
    _, key = issue_token(user=marketer, name="faults")
    web, url = processes.web()
    processes.worker()
    api = Api(url, key)
    assert api.call("GET", "/api/v1/leads/")[0] == 200

    redis.stop()  # cache and broker both gone
    for lead in leads:
        status, body = api.call(
            "POST", "/api/v1/events/", [{"lead": {"id": lead.pk}, "type": "demo_request", "event_id": f"d{lead.pk}"}]
        )
        assert status == 201, body
        assert api.call("GET", "/api/v1/leads/?stage=mql")[0] == 200
    during_outage = api.errors
    slowest_in_outage = api.slowest

    # The writes were committed while the broker was down; the webhooks wait in the outbox.
    lost, duplicated = _transitions_to_mql([lead.pk for lead in leads])
    pending = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count()
    assert "Cache unavailable" in web.log_text()

    redis.start()
    recovered = time.monotonic()
    redeliver_outbox()  # beat's every-minute job, run once now rather than waited for
    wait_for(lambda: len(set(receiver.deliveries)) >= len(leads), timeout=60, what="webhooks after recovery")
    delivered_in = time.monotonic() - recovered
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == len(leads)
    for _ in range(10):
        api.call("GET", "/api/v1/leads/")
    report(
        {
            "scenario": "Redis stopped (cache + broker)",
            "requests": api.served,
            "errors_5xx": api.errors,
            "errors_5xx_after_recovery": api.errors - during_outage,
            "lost_transitions": lost,
            "duplicated_transitions": duplicated,
            "webhooks_after_recovery": f"{len(set(receiver.deliveries))}/{pending}",
            "slowest_s": round(slowest_in_outage, 2),
            "recovered_in_s": round(delivered_in, 1),
        }
    )
    assert api.errors == 0
    assert (lost, duplicated) == (0, 0)
    assert pending == len(leads)
    assert len(receiver.deliveries) == len(set(receiver.deliveries))  # none delivered twice


LEADS_TO_RESCORE = 3 * services.BATCH_SIZE


def test_a_worker_killed_mid_rescore_is_replaced_and_the_rescore_redone_within_a_minute(
    processes, private_services, marketer, manager, team, definition_json, settings
):
    _activate(marketer, manager, definition_json)
    RescoreRequest.objects.all().delete()  # the activation's (empty) rescore
    now = timezone.now()
    leads = Lead.objects.bulk_create(
        Lead(
            email=f"bulk{i}@acme.example", company="Acme", employees=500, job_title="VP Sales", country="US",
            stage=Stage.LEAD, stage_entered_at=now,
        )
        for i in range(LEADS_TO_RESCORE)
    )  # fmt: skip
    lead_ids = [lead.pk for lead in leads]
    worker = processes.worker()
    # What the events API does with SCORING_EVENTS_ASYNC: store the events and, in the same
    # transaction, the rescore request (three batches of leads) the worker picks up on commit.
    with transaction.atomic():
        Event.objects.bulk_create(
            Event(lead=lead, type="demo_request", occurred_at=now, event_id=f"bulk-{lead.pk}") for lead in leads
        )
        services.rescore_after_commit(lead_ids)
    request = RescoreRequest.objects.get()
    wait_for(
        lambda: Lead.objects.filter(pk__in=lead_ids, stage=Stage.MQL).exists(),
        timeout=60,
        interval=0.02,
        what="the first batch of the rescore to be promoted",
    )
    worker.kill()  # mid-rescore: one batch committed, the next one's transaction cut off
    killed = time.monotonic()
    request.refresh_from_db()
    assert request.done_at is None, "the rescore finished before the kill: raise LEADS_TO_RESCORE"
    promoted_at_kill = Lead.objects.filter(pk__in=lead_ids, stage=Stage.MQL).count()
    assert 0 < promoted_at_kill < LEADS_TO_RESCORE

    processes.worker(beat=True)  # a replacement worker; its beat looks for lapsed leases
    wait_for(
        lambda: RescoreRequest.objects.filter(pk=request.pk, done_at__isnull=False).exists(),
        timeout=90,
        what="the killed rescore to be redone",
    )
    redone_in = time.monotonic() - killed
    request.refresh_from_db()
    lost, duplicated = _transitions_to_mql(lead_ids)
    report(
        {
            "scenario": f"worker killed mid-rescore ({promoted_at_kill}/{LEADS_TO_RESCORE} leads promoted at the kill)",
            "requests": None,
            "errors_5xx": None,
            "lost_transitions": lost,
            "duplicated_transitions": duplicated,
            "recovered_in_s": round(redone_in, 1),
        }
    )
    assert request.attempts == 2
    assert (lost, duplicated) == (0, 0)
    assert Lead.objects.filter(pk__in=lead_ids, stage=Stage.MQL).count() == LEADS_TO_RESCORE
    assert redone_in < 60


def test_after_a_postgresql_restart_every_request_succeeds(
    processes, private_services, marketer, manager, team, definition_json
):
    pg, _ = private_services
    _activate(marketer, manager, definition_json)
    leads = _hand_raisers(30, "restart")
    _, key = issue_token(user=marketer, name="faults")
    _, url = processes.web()
    api = Api(url, key)
    for lead in leads[:10]:  # every gunicorn worker now holds a persistent connection
        api.call("GET", "/api/v1/leads/")
        api.call("POST", "/api/v1/events/", [{"lead": {"id": lead.pk}, "type": "page_view", "event_id": "warm"}])
    assert api.errors == 0

    during = Api(url, key)
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            during.call("GET", "/api/v1/leads/")

    loader = threading.Thread(target=load)
    loader.start()
    pg.restart()  # fast mode: every connection is cut
    stop.set()
    loader.join()
    connections.close_all()

    after = Api(url, key)
    for lead in leads:
        after.call("GET", "/api/v1/leads/")
        status, body = after.call(
            "POST", "/api/v1/events/", [{"lead": {"id": lead.pk}, "type": "demo_request", "event_id": f"r{lead.pk}"}]
        )
        assert status == 201, body
    lost, duplicated = _transitions_to_mql([lead.pk for lead in leads])
    report(
        {
            "scenario": "PostgreSQL restarted (fast)",
            "requests": api.served + during.served + after.served,
            "errors_5xx": api.errors + during.errors + after.errors,
            "errors_5xx_after_recovery": after.errors,
            "slowest_s": round(max(api.slowest, during.slowest, after.slowest), 2),
            "lost_transitions": lost,
            "duplicated_transitions": duplicated,
        }
    )
    assert after.errors == 0
    assert (lost, duplicated) == (0, 0)
