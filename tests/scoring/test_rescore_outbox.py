"""The rescore outbox (issue 22, point 7): a rescore asked for in a transaction is a row that
commits with its cause; the task claims it and marks it done; beat queues again the rows whose
task was lost or whose worker died mid-rescore, a lease after. Running a row twice changes
nothing. Time is passed by dating the rows, not by sleeping."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connections
from django.utils import timezone

from leads.models import Event, Stage, StageTransition
from scoring import services, tasks
from scoring.models import RescoreKind, RescoreRequest
from tests.factories import LeadFactory

from .conftest import client_for
from .test_acceptance import _activate_through_api

pytestmark = pytest.mark.django_db

LEASE = dt.timedelta(seconds=30)


@pytest.fixture
def async_scoring(settings):
    settings.SCORING_EVENTS_ASYNC = True
    settings.RESCORE_CLAIM_SECONDS = 30


@pytest.fixture
def hand_raiser(marketer, manager, team, spec_definition):
    _activate_through_api(marketer, manager, spec_definition)
    RescoreRequest.objects.all().delete()  # the activation's own rescore
    return LeadFactory(email="bo@acme.example", company="Acme", employees=500, job_title="Head of Growth")


def _post_demo_request(marketer, lead, capture, *, run_callbacks: bool, event_id: str = "demo-outbox"):
    with capture(execute=run_callbacks):
        response = client_for(marketer).post(
            "/api/v1/events/",
            [{"lead": {"id": lead.pk}, "type": "demo_request", "event_id": event_id}],
            format="json",
        )
    assert response.status_code == 201, response.content
    return response


def _mql_transitions(lead) -> int:
    return StageTransition.objects.filter(lead=lead, to_stage=Stage.MQL).count()


def test_stored_events_leave_a_rescore_request_that_commits_with_them(
    marketer, hand_raiser, async_scoring, django_capture_on_commit_callbacks
):
    _post_demo_request(marketer, hand_raiser, django_capture_on_commit_callbacks, run_callbacks=False)

    request = RescoreRequest.objects.get()
    assert request.kind == RescoreKind.LEADS
    assert request.lead_ids == [hand_raiser.pk]
    assert request.done_at is None  # the task (not run here) has yet to score the lead
    hand_raiser.refresh_from_db()
    assert hand_raiser.stage == Stage.LEAD


def test_a_rejected_event_batch_leaves_no_rescore_request(marketer, hand_raiser, async_scoring):
    response = client_for(marketer).post(
        "/api/v1/events/",
        [
            {"lead": {"id": hand_raiser.pk}, "type": "demo_request", "event_id": "ok"},
            {"lead": {"id": hand_raiser.pk}, "type": "demo_request", "event_id": "bad", "occurred_at": "soon"},
        ],
        format="json",
    )

    assert response.status_code == 400
    assert not RescoreRequest.objects.exists()


def test_the_queued_task_scores_the_leads_and_marks_the_request_done(
    marketer, hand_raiser, async_scoring, django_capture_on_commit_callbacks
):
    _post_demo_request(marketer, hand_raiser, django_capture_on_commit_callbacks, run_callbacks=True)

    request = RescoreRequest.objects.get()
    assert request.done_at is not None and request.claimed_until is None
    assert request.attempts == 1
    hand_raiser.refresh_from_db()
    assert hand_raiser.stage == Stage.MQL


def test_running_a_done_request_again_changes_nothing(
    marketer, hand_raiser, async_scoring, django_capture_on_commit_callbacks
):
    _post_demo_request(marketer, hand_raiser, django_capture_on_commit_callbacks, run_callbacks=True)
    request = RescoreRequest.objects.get()

    assert services.run_rescore_request(request.pk) == "skipped"
    # Even forced to run again (a second worker that took a lapsed lease), one transition only.
    RescoreRequest.objects.filter(pk=request.pk).update(done_at=None, claimed_until=None)
    assert services.run_rescore_request(request.pk) == "done"
    assert _mql_transitions(hand_raiser) == 1


def test_a_request_claimed_by_a_live_worker_is_not_taken_by_a_second(hand_raiser, async_scoring):
    request = RescoreRequest.objects.create(lead_ids=[hand_raiser.pk], claimed_until=timezone.now() + LEASE, attempts=1)

    assert services.run_rescore_request(request.pk) == "skipped"
    assert tasks.redo_rescore_outbox() == 0
    request.refresh_from_db()
    assert request.done_at is None and request.attempts == 1


def test_a_rescore_killed_mid_run_is_redone_once_its_lease_has_run_out(
    marketer, hand_raiser, async_scoring, django_capture_on_commit_callbacks
):
    _post_demo_request(marketer, hand_raiser, django_capture_on_commit_callbacks, run_callbacks=False)
    # A worker claimed the row and died before scoring: its lease ran out a second ago.
    killed_at = timezone.now() - LEASE - dt.timedelta(seconds=1)
    RescoreRequest.objects.update(claimed_until=killed_at + LEASE, attempts=1)

    assert tasks.redo_rescore_outbox() == 1  # beat (every lease) queues it; eager here

    request = RescoreRequest.objects.get()
    assert request.done_at is not None and request.attempts == 2
    hand_raiser.refresh_from_db()
    assert hand_raiser.stage == Stage.MQL
    assert _mql_transitions(hand_raiser) == 1


def test_a_request_whose_task_was_lost_is_redone_a_lease_after_it_was_written(
    marketer, hand_raiser, async_scoring, django_capture_on_commit_callbacks
):
    _post_demo_request(marketer, hand_raiser, django_capture_on_commit_callbacks, run_callbacks=False)

    assert tasks.redo_rescore_outbox() == 0  # just written: its own task may still be on its way
    RescoreRequest.objects.update(created_at=timezone.now() - LEASE - dt.timedelta(seconds=1))
    assert tasks.redo_rescore_outbox() == 1

    hand_raiser.refresh_from_db()
    assert hand_raiser.stage == Stage.MQL


def test_a_broker_that_refuses_the_task_means_the_request_runs_at_once(
    marketer, hand_raiser, async_scoring, django_capture_on_commit_callbacks, monkeypatch
):
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.run_rescore_request_task, "apply_async", broker_down)
    _post_demo_request(marketer, hand_raiser, django_capture_on_commit_callbacks, run_callbacks=True)

    assert RescoreRequest.objects.get().done_at is not None
    hand_raiser.refresh_from_db()
    assert hand_raiser.stage == Stage.MQL


def test_activating_a_definition_writes_a_whole_table_rescore_request(
    marketer, manager, team, spec_definition, django_capture_on_commit_callbacks
):
    lead = LeadFactory(email="vp@acme.example", company="Acme", employees=500, job_title="VP Sales")
    with django_capture_on_commit_callbacks(execute=False):
        _activate_through_api(marketer, manager, spec_definition)

    request = RescoreRequest.objects.get()
    assert request.kind == RescoreKind.ALL and request.done_at is None
    assert services.run_rescore_request(request.pk) == "done"
    lead.refresh_from_db()
    assert lead.fit_score == 55


def test_done_requests_are_forgotten_after_a_week(hand_raiser):
    now = timezone.now()
    old = RescoreRequest.objects.create(lead_ids=[hand_raiser.pk], done_at=now - dt.timedelta(days=8))
    recent = RescoreRequest.objects.create(lead_ids=[hand_raiser.pk], done_at=now - dt.timedelta(days=1))
    pending = RescoreRequest.objects.create(lead_ids=[hand_raiser.pk], created_at=now - dt.timedelta(days=30))

    services.forget_done_rescore_requests(now=now)

    assert set(RescoreRequest.objects.values_list("pk", flat=True)) == {recent.pk, pending.pk}
    assert old.pk not in RescoreRequest.objects.values_list("pk", flat=True)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_taking_one_request_at_once_score_it_once(marketer, manager, team, spec_definition):
    _activate_through_api(marketer, manager, spec_definition)
    RescoreRequest.objects.all().delete()
    lead = LeadFactory(email="bo@acme.example", company="Acme", employees=500, job_title="Head of Growth")
    Event.objects.create(lead=lead, type="demo_request", event_id="demo-two-workers")
    request = RescoreRequest.objects.create(lead_ids=[lead.pk])
    start = threading.Barrier(2)
    results: list[str] = []

    def worker() -> None:
        try:
            start.wait()
            results.append(services.run_rescore_request(request.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["done", "skipped"]
    request.refresh_from_db()
    assert request.attempts == 1
    assert _mql_transitions(lead) == 1
