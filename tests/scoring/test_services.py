"""Scoring services on the database: decay over time, rescore, commands, validation, admin."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.template.loader import render_to_string
from django.utils import timezone

from leads.models import Stage, StageTransition
from scoring import definitions, engine, services
from scoring.models import BehaviorRule, DefinitionState, FitRule, QualifiedLeadDefinition, RescoreKind, RescoreRequest
from scoring.tasks import redo_rescore_outbox, refresh_decayed_scores
from tests.factories import EventFactory, LeadFactory

pytestmark = pytest.mark.django_db


def _activate(data, *, marketer, manager):
    definition = definitions.create_definition(data, user=marketer)
    definitions.sign_definition(definition, user=marketer)
    definitions.sign_definition(definition, user=manager)
    return services.activate_definition(definition, user=marketer, rescore="no")


def test_thirty_days_after_a_20_point_event_with_a_30_day_half_life_it_counts_10(marketer, manager):
    _activate(
        {
            "name": "Ebook",
            "behavior_threshold": 100,
            "behavior_rules": [{"name": "Ebook", "event_type": "ebook", "points": 20, "half_life_days": 30}],
        },
        marketer=marketer,
        manager=manager,
    )
    now = timezone.now()
    lead = LeadFactory()
    EventFactory(lead=lead, type="ebook", occurred_at=now)
    services.on_events_recorded([lead.pk], now=now)
    lead.refresh_from_db()
    assert lead.behavior_score == pytest.approx(20)

    services.rescore_leads([lead.pk], now=now + dt.timedelta(days=30))
    lead.refresh_from_db()
    assert lead.behavior_score == pytest.approx(10)
    assert services.explain_lead(lead, now=now + dt.timedelta(days=30))["behavior"]["rules"][0][
        "points_after_decay"
    ] == pytest.approx(10)


def test_daily_refresh_lowers_a_faded_leads_stored_score_below_the_threshold(marketer, manager, active_spec_definition):
    lead = LeadFactory(email="gmail-free@acme.example", job_title="Analyst", employees=20)
    long_ago = timezone.now() - dt.timedelta(days=120)
    for _i in range(2):
        EventFactory(lead=lead, type="webinar_attended", occurred_at=long_ago, properties={})
    lead.behavior_score = 40  # what it scored when the webinars were fresh
    lead.save(update_fields=["behavior_score"])

    result = refresh_decayed_scores.delay().get()

    lead.refresh_from_db()
    assert result == "done"
    # The refresh went through the rescore outbox: one whole-table row, finished.
    request = RescoreRequest.objects.get()
    assert request.kind == RescoreKind.ALL and request.done_at is not None
    assert lead.behavior_score == pytest.approx(10, abs=0.05)  # two 20s, two 60-day half-lives
    assert lead.behavior_score < active_spec_definition.behavior_threshold


def test_rescore_all_command_promotes_leads_that_now_qualify_and_shows_progress(
    marketer, manager, team, active_spec_definition
):
    fit = [LeadFactory(email=f"vp{i}@acme.example", job_title="VP Sales") for i in range(3)]
    unfit = LeadFactory(email="x@acme.example", job_title="Intern", employees=5)
    closed = LeadFactory(email="won@acme.example", job_title="VP Sales", stage=Stage.WON)
    for lead in [*fit, unfit, closed]:
        for _i in range(2):
            EventFactory(lead=lead, type="webinar_attended", properties={})
    out = io.StringIO()

    call_command("rescore", "--all", stdout=out)

    assert "Re-scored 4 open leads" in out.getvalue()
    assert "1 became MQL" not in out.getvalue() and "3 became MQL" in out.getvalue()
    assert "[" in out.getvalue() and "4/4" in out.getvalue()
    assert {lead.stage for lead in type(unfit).objects.filter(pk__in=[lead.pk for lead in fit])} == {Stage.MQL}
    unfit.refresh_from_db()
    closed.refresh_from_db()
    assert (unfit.stage, unfit.fit_score) == (Stage.LEAD, 0)
    assert closed.stage == Stage.WON and closed.behavior_score == 0  # closed leads are not rescored


def test_rescore_twice_changes_nothing_the_second_time(marketer, manager, team, active_spec_definition):
    lead = LeadFactory(job_title="VP Sales")
    EventFactory.create_batch(2, lead=lead, type="webinar_attended", properties={})
    first = services.rescore_all()
    second = services.rescore_all()
    assert (first["promoted"], second["promoted"]) == (1, 0)
    assert StageTransition.objects.filter(lead=lead).count() == 1


def test_recycled_lead_is_not_promoted_again_before_the_cool_down(marketer, manager, team, active_spec_definition):
    recycled_at = timezone.now() - dt.timedelta(days=10)
    lead = LeadFactory(job_title="VP Sales", stage=Stage.RECYCLED, stage_entered_at=recycled_at)
    EventFactory.create_batch(2, lead=lead, type="webinar_attended", properties={})
    # Pricing views too, so the interest is still above 40 when the cool-down ends 21 days on.
    EventFactory.create_batch(3, lead=lead, type="page_view", properties={"url": "/pricing"})
    services.on_events_recorded([lead.pk])
    lead.refresh_from_db()
    assert lead.stage == Stage.RECYCLED
    assert "cool-down" in services.explain_lead(lead)["why_not"][0]

    services.rescore_leads([lead.pk], now=recycled_at + dt.timedelta(days=31))
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


def test_recycled_lead_raising_a_hand_becomes_mql_before_the_cool_down(marketer, manager, team, active_spec_definition):
    lead = LeadFactory(
        job_title="VP Sales", stage=Stage.RECYCLED, stage_entered_at=timezone.now() - dt.timedelta(days=3)
    )
    EventFactory(lead=lead, type="contact_me", properties={})
    services.on_events_recorded([lead.pk])
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


def test_a_lead_missing_a_required_field_is_not_mql_and_says_so(marketer, manager, team, active_spec_definition):
    lead = LeadFactory(company="", job_title="VP Sales")
    EventFactory.create_batch(2, lead=lead, type="webinar_attended", properties={})
    services.on_events_recorded([lead.pk])
    lead.refresh_from_db()
    assert lead.stage == Stage.LEAD
    assert services.explain_lead(lead)["missing_fields"] == ["company"]


def test_a_lead_edited_to_a_fitting_title_is_rescored_and_promoted(marketer, manager, team, active_spec_definition):
    lead = LeadFactory(job_title="Analyst")
    EventFactory.create_batch(2, lead=lead, type="webinar_attended", properties={})
    services.on_events_recorded([lead.pk])
    lead.refresh_from_db()
    assert (lead.fit_score, lead.stage) == (25, Stage.LEAD)

    lead.job_title = "Chief Revenue Officer"
    lead.save(update_fields=["job_title"])
    services.on_lead_changed([lead.pk])
    lead.refresh_from_db()
    assert (lead.fit_score, lead.stage) == (55, Stage.MQL)


def test_only_one_definition_can_be_active(active_spec_definition):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        QualifiedLeadDefinition.objects.create(name="Second", state=DefinitionState.ACTIVE)


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        (FitRule(name="r", field="job_title", operator="regex", value="(", points=1), "value", "does not compile"),
        (FitRule(name="r", field="employees", operator="gte", value="many", points=1), "value", "needs a number"),
        (FitRule(name="r", field="employees", operator="between", value=[1], points=1), "value", "two numbers"),
        (
            BehaviorRule(
                name="r", event_type="x", property="url", property_operator="regex", property_value="[", points=1
            ),
            "property_value",
            "does not compile",
        ),
    ],
)
def test_clean_refuses_rules_that_cannot_work(rule, field, message):
    with pytest.raises(ValidationError) as caught:
        rule.clean()
    assert message in caught.value.message_dict[field][0]


def test_export_then_import_round_trips_the_spec_json(tmp_path, active_spec_definition, spec_definition):
    target = tmp_path / "definition.json"
    call_command("export_definition", "-o", str(target), stdout=io.StringIO())
    assert json.loads(target.read_text()) == spec_definition

    out = io.StringIO()
    call_command("import_definition", str(target), stdout=out)
    imported = QualifiedLeadDefinition.objects.get(state=DefinitionState.DRAFT)
    assert f"Imported draft v{imported.version}" in out.getvalue()
    assert definitions.definition_to_dict(imported) == spec_definition


def test_import_of_a_broken_file_names_the_rule_and_writes_nothing(tmp_path, spec_definition):
    from django.core.management.base import CommandError

    spec_definition["knockouts"][0]["value"] = "@(gmail"
    target = tmp_path / "bad.json"
    target.write_text(json.dumps(spec_definition))
    with pytest.raises(CommandError, match=r"knockouts\[0\]\.value"):
        call_command("import_definition", str(target))
    assert not QualifiedLeadDefinition.objects.exists()


def test_clone_makes_an_unsigned_draft_with_the_same_rules(marketer, active_spec_definition):
    copy = definitions.clone_definition(active_spec_definition, user=marketer)
    assert copy.state == DefinitionState.DRAFT and copy.missing_signoffs() == ["marketing", "sales manager"]
    assert (
        definitions.definition_to_dict(copy)["fit_rules"]
        == definitions.definition_to_dict(active_spec_definition)["fit_rules"]
    )


def test_explanation_partial_names_the_knockout_and_the_rules(active_spec_definition):
    lead = LeadFactory(email="ana@gmail.com", job_title="VP Marketing")
    html = render_to_string("scoring/_explanation.html", {"explanation": services.explain_lead(lead)})
    assert "Knocked out by:</strong> Free mail" in html
    assert "Decision maker" in html and "Not qualified" in html


def test_admin_activation_without_signoffs_shows_which_is_missing(client, marketer, spec_definition):
    draft = definitions.create_definition(spec_definition, user=marketer)
    client.force_login(marketer)
    response = client.post(
        "/admin/scoring/qualifiedleaddefinition/",
        {"action": "activate", "_selected_action": [draft.pk]},
        follow=True,
    )
    assert "missing: marketing and sales manager" in response.content.decode()
    draft.refresh_from_db()
    assert draft.state == DefinitionState.DRAFT


def test_admin_definition_and_preview_pages_render_for_a_marketer(client, marketer, active_spec_definition):
    client.force_login(marketer)
    page = client.get(f"/admin/scoring/qualifiedleaddefinition/{active_spec_definition.pk}/change/")
    assert page.status_code == 200 and "Decision maker" in page.content.decode()
    preview = client.get(f"/admin/scoring/qualifiedleaddefinition/{active_spec_definition.pk}/preview/")
    assert preview.status_code == 200 and "MQLs per week" in preview.content.decode()


def test_remembered_fit_scores_equal_the_engine_for_every_kind_of_fact(spec_definition):
    spec_definition["fit_rules"].append(
        {"name": "Partner", "field": "partner_tier", "operator": "equals", "value": 1, "points": 10}
    )
    definition = engine.compile_definition(spec_definition, version=1)
    fit = services.FitScores(definition)
    facts = [
        {"employees": 500, "job_title": "VP Sales", "attributes": {"partner_tier": 1}},
        {"employees": 500, "job_title": "VP Sales", "attributes": {"partner_tier": True}},
        {"employees": 500, "job_title": "VP Sales", "attributes": {"partner_tier": "1"}},
        {"employees": 500, "job_title": "VP Sales", "attributes": {"partner_tier": [1]}},
        {"employees": 50, "job_title": "Head of IT", "attributes": {}},
        {"employees": None, "job_title": "", "attributes": None},
    ]
    for lead in facts * 2:
        assert fit(lead) == engine.fit_score(definition, lead)


def test_a_nightly_refresh_killed_half_way_is_finished_by_the_outbox_within_a_lease(
    marketer, manager, active_spec_definition
):
    lead = LeadFactory(email="gmail-free@acme.example", job_title="Analyst", employees=20)
    long_ago = timezone.now() - dt.timedelta(days=120)
    for _i in range(2):
        EventFactory(lead=lead, type="webinar_attended", occurred_at=long_ago, properties={})
    lead.behavior_score = 40
    lead.save(update_fields=["behavior_score"])
    # The worker running the refresh died after claiming its row: the lease ran out a second ago.
    lapsed = timezone.now() - dt.timedelta(seconds=1)
    RescoreRequest.objects.create(kind=RescoreKind.ALL, claimed_until=lapsed, attempts=1)

    assert redo_rescore_outbox() == 1

    lead.refresh_from_db()
    assert lead.behavior_score == pytest.approx(10, abs=0.05)
    assert RescoreRequest.objects.get().done_at is not None
