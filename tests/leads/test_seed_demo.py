"""`manage.py seed_demo`: demo data in every stage, deterministic, and created only once."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.utils import timezone

from leads.models import Event, Lead, Stage, StageTransition, Team, Touch
from scoring.models import QualifiedLeadDefinition
from sla.models import SlaPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_creates_leads_in_every_stage_with_history(seeded):
    stages = set(Lead.objects.values_list("stage", flat=True))
    assert stages == set(Stage.values)
    assert 350 <= Lead.objects.count() <= 450
    assert Event.objects.count() > Lead.objects.count()
    assert Touch.objects.exists()
    won = Lead.objects.filter(stage=Stage.WON).first()
    path = list(StageTransition.objects.filter(lead=won).values_list("to_stage", flat=True))
    assert path == [Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON]
    oldest = StageTransition.objects.order_by("at").first().at
    assert (timezone.now() - oldest).days >= 30


def test_seed_leaves_a_few_mqls_past_their_deadline_and_most_open_ones_ahead(seeded):
    now = timezone.now()
    open_mqls = Lead.objects.filter(stage=Stage.MQL)
    breached = open_mqls.filter(sla_due_at__lt=now).count()
    assert 1 <= breached < open_mqls.count() / 2
    assert Lead.objects.filter(stage=Stage.SAL, sla_due_at__gt=now).exists()


def test_seed_creates_demo_logins_teams_policies_and_a_signed_definition(seeded):
    assert "demo" in seeded
    for username in ("marketer", "manager", "rep1", "rep2", "rep3"):
        assert authenticate(username=username, password="demo") is not None
    assert Team.objects.filter(is_fallback=True).count() == 1
    assert Team.objects.exclude(territories=[]).count() >= 2
    assert set(SlaPolicy.objects.values_list("clock", flat=True)) == {
        "mql_decision",
        "sal_first_touch",
        "sal_min_touches",
        "sal_qualify",
    }
    definition = QualifiedLeadDefinition.objects.get(state="active")
    assert definition.marketing_signed_by.username == "marketer"
    assert definition.sales_signed_by.username == "manager"
    assert definition.fit_rules.count() == 2 and definition.knockouts.count() == 1


def test_second_seed_run_creates_nothing(seeded):
    before = (Lead.objects.count(), StageTransition.objects.count(), Event.objects.count())
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "already present" in out.getvalue()
    assert (Lead.objects.count(), StageTransition.objects.count(), Event.objects.count()) == before


def test_seed_ships_targets_for_the_current_and_previous_quarter_and_signature_history(seeded):
    from reports.models import QuarterlyTarget
    from scoring import definitions

    today = timezone.localdate()
    quarter = (today.month - 1) // 3 + 1
    previous = (today.year, quarter - 1) if quarter > 1 else (today.year - 1, 4)
    years_quarters = set(QuarterlyTarget.objects.filter(team=None).values_list("year", "quarter"))
    assert years_quarters == {(today.year, quarter), previous}
    definition = QualifiedLeadDefinition.objects.get(state="active")
    hashes = set(definition.signatures.values_list("content_hash", flat=True))
    assert hashes == {definitions.content_hash(definition)}


def test_the_demo_agrees_with_itself(seeded):
    """Issue 25: every number on every page comes from the same lived history."""
    from django.db.models import Max

    from leads.models import TeamMembership
    from reports import selectors as report_selectors
    from scoring.services import explain_lead

    # Recycled and never-qualified leads have no owner; open and closed deals do.
    assert not Lead.objects.filter(stage__in=[Stage.RECYCLED, Stage.LEAD], owner__isnull=False).exists()
    assert not Lead.objects.filter(stage__in=[Stage.SAL, Stage.SQL, Stage.WON, Stage.LOST], owner__isnull=True).exists()
    # Each lead's owner is the owner its last audit row says.
    for lead in Lead.objects.exclude(stage=Stage.LEAD):
        assert lead.transitions.order_by("at", "id").last().owner_id == lead.owner_id, lead.pk
        assert lead.transitions.order_by("at", "id").last().to_stage == lead.stage, lead.pk
    # The score shown in lists is the engine's (the grade is the score's).
    for lead in Lead.objects.order_by("?")[:40]:
        explained = explain_lead(lead)
        assert round(explained["fit"]["score"], 1) == round(lead.fit_score, 1), lead.pk
        assert explained["fit"]["grade"] == lead.fit_grade
    # Round-robin stamps are the moments of each member's latest assignment in that team.
    for membership in TeamMembership.objects.select_related("user", "team"):
        latest = StageTransition.objects.filter(
            assignment__team=membership.team.name, assignment__owner=membership.user.username
        ).aggregate(at=Max("at"))["at"]
        if latest is None:
            assert membership.last_assigned_at is None, membership
        else:
            assert abs(membership.last_assigned_at - latest) < dt.timedelta(minutes=1), membership
    assert TeamMembership.objects.filter(last_assigned_at__isnull=False).count() >= 4
    # SQLs and closed deals sit with account executives, with the rep's hand-off note.
    assert Lead.objects.filter(stage=Stage.SQL, owner__groups__name="account_executive").exists()
    handoff = StageTransition.objects.filter(to_stage=Stage.SQL).first()
    assert handoff.note and handoff.bant["budget"]["value"] is True
    # Report totals match the stage counts of the history.
    today = timezone.localdate()
    from reports.filters import ReportFilters

    funnel = report_selectors.funnel(date_from=today - dt.timedelta(days=120), date_to=today, filters=ReportFilters())
    entered = {row["stage"]: row["entered"] for row in funnel["stages"]}
    for stage in (Stage.SAL, Stage.SQL, Stage.WON):
        expected = StageTransition.objects.filter(to_stage=stage).exclude(from_stage=stage).count()
        assert entered[stage] == expected, stage
