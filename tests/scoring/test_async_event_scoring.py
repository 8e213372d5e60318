"""`SCORING_EVENTS_ASYNC`: the events API stores the events and leaves the scoring to a Celery
task queued when its transaction commits; the lead ends up exactly as with in-request scoring."""

from __future__ import annotations

import pytest

from leads.models import Event, Lead, Stage, StageTransition
from scoring import tasks
from tests.factories import LeadFactory

from .conftest import client_for
from .test_acceptance import _activate_through_api

pytestmark = pytest.mark.django_db


@pytest.fixture
def async_scoring(settings):
    settings.SCORING_EVENTS_ASYNC = True


def _post_demo_request(marketer, lead, django_capture_on_commit_callbacks, *, run_callbacks=True):
    with django_capture_on_commit_callbacks(execute=run_callbacks) as callbacks:
        response = client_for(marketer).post(
            "/api/v1/events/",
            [
                {"lead": {"id": lead.pk}, "type": "demo_request", "event_id": "demo-async"},
                {
                    "lead": {"email": "new@acme.example"},
                    "type": "page_view",
                    "event_id": "pv-async",
                    "properties": {"url": "/pricing"},
                },
            ],
            format="json",
        )
    assert response.status_code == 201, response.content
    return callbacks


def test_the_request_stores_events_and_scores_nothing_before_its_commit(
    marketer, manager, team, spec_definition, async_scoring, django_capture_on_commit_callbacks
):
    _activate_through_api(marketer, manager, spec_definition)
    lead = LeadFactory(email="bo@acme.example", company="Acme", employees=500, job_title="Head of Growth")

    callbacks = _post_demo_request(marketer, lead, django_capture_on_commit_callbacks, run_callbacks=False)

    assert Event.objects.filter(event_id="demo-async", lead=lead).exists()
    lead.refresh_from_db()
    assert lead.stage == Stage.LEAD  # not scored inside the request
    assert len(callbacks) == 1  # one task for the batch, queued on commit


def test_the_task_queued_on_commit_promotes_the_hand_raiser(
    marketer, manager, team, spec_definition, async_scoring, django_capture_on_commit_callbacks
):
    _activate_through_api(marketer, manager, spec_definition)
    lead = LeadFactory(email="bo@acme.example", company="Acme", employees=500, job_title="Head of Growth")

    _post_demo_request(marketer, lead, django_capture_on_commit_callbacks)

    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert lead.owner is not None  # assigned round-robin, as in the request path
    assert StageTransition.objects.get(lead=lead).reason == "hand_raiser"
    # The lead the batch created is scored by the task too.
    assert Lead.objects.get(email="new@acme.example").behavior_score > 0


def test_a_broker_that_refuses_the_task_means_scoring_at_once_not_never(
    marketer, manager, team, spec_definition, async_scoring, django_capture_on_commit_callbacks, monkeypatch
):
    _activate_through_api(marketer, manager, spec_definition)
    lead = LeadFactory(email="bo@acme.example", company="Acme", employees=500, job_title="Head of Growth")

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.run_rescore_request_task, "apply_async", broker_down)
    _post_demo_request(marketer, lead, django_capture_on_commit_callbacks)

    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
