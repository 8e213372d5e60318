"""The lifecycle table of SPEC section 2: every allowed and every forbidden move, its audit row,
reason and BANT validation, who may make which move, and the append-only audit trail."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from leads import lifecycle
from leads.lifecycle import (
    SYSTEM,
    Actor,
    BantIncomplete,
    InvalidReason,
    InvalidTransition,
    NoteRequired,
    NotPermitted,
)
from leads.management.commands.seed_demo import seed_definition
from leads.models import ActorType, Lead, Stage, StageTransition
from sla.models import BreachAction, BusinessCalendar, SlaPolicy
from tests.factories import LeadFactory, TeamFactory, add_rep, make_user

pytestmark = pytest.mark.django_db

ALL_YES = {key: {"value": True, "note": "confirmed on call"} for key in lifecycle.BANT_KEYS}

# (move name, keyword arguments, from stage, to stage) for every row of the table.
ALLOWED = [
    ("promote_to_mql", {"reason": "score"}, Stage.LEAD, Stage.MQL),
    ("promote_to_mql", {"reason": "hand_raiser"}, Stage.RECYCLED, Stage.MQL),
    ("accept", {}, Stage.MQL, Stage.SAL),
    ("reject", {"reason": "no_budget"}, Stage.MQL, Stage.RECYCLED),
    ("reject", {"reason": "spam"}, Stage.MQL, Stage.DISQUALIFIED),
    ("recycle", {"reason": "bad_timing"}, Stage.MQL, Stage.RECYCLED),
    ("recycle", {"reason": "no_need"}, Stage.SAL, Stage.RECYCLED),
    ("disqualify", {"reason": "not_a_fit"}, Stage.MQL, Stage.DISQUALIFIED),
    ("disqualify", {"reason": "duplicate"}, Stage.SAL, Stage.DISQUALIFIED),
    ("qualify", {"bant": ALL_YES}, Stage.SAL, Stage.SQL),
    ("close", {"outcome": "won"}, Stage.SQL, Stage.WON),
    ("close", {"outcome": "lost"}, Stage.SQL, Stage.LOST),
]

MOVE_ARGS = {
    "promote_to_mql": {"reason": "score"},
    "accept": {},
    "reject": {"reason": "no_budget"},
    "recycle": {"reason": "bad_timing"},
    "disqualify": {"reason": "not_a_fit"},
    "qualify": {"bant": ALL_YES},
    "close": {"outcome": "won"},
}
FROM_STAGES = {
    "promote_to_mql": {Stage.LEAD, Stage.RECYCLED},
    "accept": {Stage.MQL},
    "reject": {Stage.MQL},
    "recycle": {Stage.MQL, Stage.SAL},
    "disqualify": {Stage.MQL, Stage.SAL},
    "qualify": {Stage.SAL},
    "close": {Stage.SQL},
}
FORBIDDEN = [(move, stage) for move in MOVE_ARGS for stage in Stage.values if stage not in FROM_STAGES[move]]


def lead_in(stage: str, **kwargs) -> Lead:
    """A lead placed directly in `stage` (test set-up only; the code under test never does this)."""
    return LeadFactory(stage=stage, fit_score=72.5, behavior_score=48.0, **kwargs)


@pytest.mark.parametrize(
    ("move", "kwargs", "from_stage", "to_stage"), ALLOWED, ids=[f"{m}-{f}-to-{t}" for m, _, f, t in ALLOWED]
)
def test_every_allowed_move_changes_the_stage_and_writes_one_audit_row(
    team, manager, move, kwargs, from_stage, to_stage
):
    lead = lead_in(from_stage, team=team)
    row = getattr(lifecycle, move)(lead, actor=Actor.person(manager), **kwargs)
    lead.refresh_from_db()
    assert lead.stage == to_stage
    audit = StageTransition.objects.get(lead=lead)
    assert audit == row
    assert (audit.from_stage, audit.to_stage) == (from_stage, to_stage)
    assert audit.actor == manager and audit.actor_type == ActorType.USER


@pytest.mark.parametrize(("move", "from_stage"), FORBIDDEN, ids=[f"{m}-from-{s}" for m, s in FORBIDDEN])
def test_every_forbidden_move_is_refused_naming_the_stage_and_changes_nothing(team, move, from_stage):
    lead = lead_in(from_stage, team=team)
    with pytest.raises(InvalidTransition) as refused:
        getattr(lifecycle, move)(lead, actor=SYSTEM, **MOVE_ARGS[move])
    assert refused.value.code == "invalid_transition"
    assert refused.value.details["current_stage"] == from_stage
    assert refused.value.details["allowed_moves"] == lifecycle.allowed_moves(from_stage)
    lead.refresh_from_db()
    assert lead.stage == from_stage
    assert not StageTransition.objects.filter(lead=lead).exists()


def test_final_stages_offer_no_moves_in_the_error_message(team):
    lead = lead_in(Stage.WON, team=team)
    with pytest.raises(InvalidTransition, match="no moves"):
        lifecycle.accept(lead, actor=SYSTEM)


def test_audit_row_records_actor_reason_scores_and_definition_version(team, rep, marketer, manager):
    definition = seed_definition(users={"marketer": marketer, "manager": manager})
    lead = lead_in(Stage.MQL, team=team, owner=rep)
    row = lifecycle.reject(lead, actor=Actor.person(rep), reason="bad_timing", note="Next quarter")
    assert row.from_stage == Stage.MQL and row.to_stage == Stage.RECYCLED
    assert row.actor == rep and row.actor_type == ActorType.USER
    assert row.reason == "bad_timing" and row.note == "Next quarter"
    assert (row.fit_score, row.behavior_score) == (72.5, 48.0)
    assert row.definition_version == definition.version
    lead.refresh_from_db()
    assert lead.owner is None and lead.recycle_count == 1


def test_system_promotion_is_recorded_as_system_without_a_user(team):
    row = lifecycle.promote_to_mql(lead_in(Stage.LEAD), actor=SYSTEM)
    assert row.actor_type == ActorType.SYSTEM and row.actor is None and row.reason == "score"


def test_api_close_is_recorded_as_the_api_clients_user(team, manager):
    row = lifecycle.close(lead_in(Stage.SQL, team=team), actor=Actor.api(manager), outcome="won")
    assert row.actor_type == ActorType.API and row.actor == manager


def test_unknown_rejection_reason_is_refused_with_the_choices(team, rep):
    lead = lead_in(Stage.MQL, team=team, owner=rep)
    with pytest.raises(InvalidReason) as refused:
        lifecycle.reject(lead, actor=Actor.person(rep), reason="too_busy")
    assert refused.value.details["field"] == "reason"
    assert "no_budget" in refused.value.details["choices"]
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


def test_only_the_system_may_recycle_with_sla_expired(team, rep):
    lead = lead_in(Stage.MQL, team=team, owner=rep)
    with pytest.raises(InvalidReason):
        lifecycle.recycle(lead, actor=Actor.person(rep), reason="sla_expired")
    row = lifecycle.recycle(lead, actor=SYSTEM, reason="sla_expired")
    assert row.reason == "sla_expired" and row.to_stage == Stage.RECYCLED


def test_disqualify_reason_must_be_a_disqualification_reason(team, rep):
    lead = lead_in(Stage.SAL, team=team, owner=rep)
    with pytest.raises(InvalidReason):
        lifecycle.disqualify(lead, actor=Actor.person(rep), reason="no_budget")


def test_close_outcome_must_be_won_or_lost(team, manager):
    with pytest.raises(InvalidReason):
        lifecycle.close(lead_in(Stage.SQL, team=team), actor=Actor.person(manager), outcome="maybe")


def _qualify_policy(bant_required: int) -> SlaPolicy:
    calendar = BusinessCalendar.objects.create(name="Test week")
    return SlaPolicy.objects.create(
        name="Qualify",
        stage=Stage.SAL,
        clock="sal_qualify",
        calendar=calendar,
        duration_hours=336,
        business_time=False,
        breach_action=BreachAction.RECYCLE,
        bant_required=bant_required,
    )


def test_qualify_needs_all_four_bant_answers_yes_by_default(team, rep):
    lead = lead_in(Stage.SAL, team=team, owner=rep)
    three = {**ALL_YES, "timeline": {"value": False, "note": "no date yet"}}
    with pytest.raises(BantIncomplete) as refused:
        lifecycle.qualify(lead, actor=Actor.person(rep), bant=three)
    assert refused.value.code == "bant_required"
    assert refused.value.details["missing"] == ["timeline"]
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL


def test_qualify_accepts_the_number_of_bant_yes_the_policy_requires(team, rep):
    _qualify_policy(3)
    lead = lead_in(Stage.SAL, team=team, owner=rep)
    three = {**ALL_YES, "budget": {"value": False, "note": "budget next year"}}
    row = lifecycle.qualify(lead, actor=Actor.person(rep), bant=three)
    assert row.to_stage == Stage.SQL
    assert row.bant["budget"] == {"value": False, "note": "budget next year"}
    assert row.bant["need"]["value"] is True


def test_qualify_with_fewer_yes_than_the_policy_requires_is_refused(team, rep):
    _qualify_policy(3)
    lead = lead_in(Stage.SAL, team=team, owner=rep)
    two = {**ALL_YES, "budget": False, "authority": False}
    with pytest.raises(BantIncomplete, match="needs 3"):
        lifecycle.qualify(lead, actor=Actor.person(rep), bant=two)


def test_bant_answer_that_is_not_yes_or_no_is_refused_naming_it(team, rep):
    lead = lead_in(Stage.SAL, team=team, owner=rep)
    with pytest.raises(BantIncomplete) as refused:
        lifecycle.qualify(lead, actor=Actor.person(rep), bant={**ALL_YES, "need": "probably"})
    assert refused.value.details["field"] == "bant.need"


def test_manual_promotion_by_a_marketer_needs_a_note(team, marketer):
    lead = lead_in(Stage.LEAD, country="US")
    with pytest.raises(NoteRequired):
        lifecycle.promote_to_mql(lead, actor=Actor.person(marketer), reason="manual", note="  ")
    lead.refresh_from_db()
    assert lead.stage == Stage.LEAD
    row = lifecycle.promote_to_mql(
        lead, actor=Actor.person(marketer), reason="manual", note="Met at the trade show booth"
    )
    assert row.note == "Met at the trade show booth" and row.actor == marketer
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL and lead.owner is not None


def test_rep_cannot_promote_a_lead_to_mql(team, rep):
    with pytest.raises(NotPermitted):
        lifecycle.promote_to_mql(lead_in(Stage.LEAD), actor=Actor.person(rep), reason="manual", note="x")


def test_override_needs_a_note(team, manager):
    lead = lead_in(Stage.LOST, team=team)
    with pytest.raises(NoteRequired):
        lifecycle.override(lead, actor=Actor.person(manager), to_stage=Stage.SQL, note="")


def test_manager_reopens_a_lost_lead_with_a_note(team, manager):
    lead = lead_in(Stage.LOST, team=team)
    row = lifecycle.override(lead, actor=Actor.person(manager), to_stage=Stage.SQL, note="CRM closed it by mistake")
    assert (row.from_stage, row.to_stage, row.reason) == (Stage.LOST, Stage.SQL, "override")
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL


@pytest.mark.parametrize("role_user", ["rep", "marketer"])
def test_only_managers_may_override(request, team, role_user):
    user = request.getfixturevalue(role_user)
    lead = lead_in(Stage.LOST, team=team)
    with pytest.raises(NotPermitted):
        lifecycle.override(lead, actor=Actor.person(user), to_stage=Stage.SQL, note="please")
    lead.refresh_from_db()
    assert lead.stage == Stage.LOST


def test_rep_accepts_own_mql(team, rep):
    lead = lead_in(Stage.MQL, team=team, owner=rep)
    lifecycle.accept(lead, actor=Actor.person(rep))
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL and lead.owner == rep


def test_rep_accepting_teams_unassigned_mql_becomes_its_owner(team, rep):
    lead = lead_in(Stage.MQL, team=team, owner=None)
    lifecycle.accept(lead, actor=Actor.person(rep))
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL and lead.owner == rep


def test_rep_cannot_accept_lead_owned_by_another_rep(team, rep, rep2):
    lead = lead_in(Stage.MQL, team=team, owner=rep2)
    with pytest.raises(NotPermitted):
        lifecycle.accept(lead, actor=Actor.person(rep))
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL and lead.owner == rep2


def test_rep_cannot_accept_unassigned_mql_of_another_team(team, rep):
    other_team = TeamFactory(name="EMEA", territories=["DE"])
    outsider = make_user("rep9", "sales_rep")
    add_rep(other_team, outsider)
    lead = lead_in(Stage.MQL, team=other_team, owner=None)
    with pytest.raises(NotPermitted):
        lifecycle.accept(lead, actor=Actor.person(rep))


def test_rep_cannot_reject_or_qualify_another_reps_lead(team, rep, rep2):
    mql = lead_in(Stage.MQL, team=team, owner=rep2)
    sal = lead_in(Stage.SAL, team=team, owner=rep2)
    with pytest.raises(NotPermitted):
        lifecycle.reject(mql, actor=Actor.person(rep), reason="no_budget")
    with pytest.raises(NotPermitted):
        lifecycle.qualify(sal, actor=Actor.person(rep), bant=ALL_YES)


def test_rep_cannot_close_an_sql(team, rep):
    with pytest.raises(NotPermitted):
        lifecycle.close(lead_in(Stage.SQL, team=team, owner=rep), actor=Actor.person(rep), outcome="won")


# --- The audit trail is append-only --------------------------------------------------------


@pytest.fixture
def audit_row(team):
    return lifecycle.promote_to_mql(lead_in(Stage.LEAD), actor=SYSTEM)


def test_stage_transition_cannot_be_changed_by_save(audit_row):
    audit_row.reason = "rewritten"
    with pytest.raises(PermissionError):
        audit_row.save()
    assert StageTransition.objects.get(pk=audit_row.pk).reason == "score"


def test_stage_transition_cannot_be_deleted(audit_row):
    with pytest.raises(PermissionError):
        audit_row.delete()
    assert StageTransition.objects.filter(pk=audit_row.pk).exists()


def test_stage_transitions_cannot_be_bulk_updated_or_deleted(audit_row):
    with pytest.raises(PermissionError):
        StageTransition.objects.filter(pk=audit_row.pk).update(reason="rewritten")
    with pytest.raises(PermissionError):
        StageTransition.objects.all().delete()
    assert StageTransition.objects.get(pk=audit_row.pk).reason == "score"


# --- Concurrency ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_two_reps_accepting_the_same_mql_at_once_exactly_one_wins(transactional_db):
    from django.contrib.auth.models import Group

    from leads.permissions import ROLES

    # Transactional tests flush the tables afterwards, role groups included; make sure they exist.
    for role in ROLES:
        Group.objects.get_or_create(name=role)
    first, second = make_user("racer1", "sales_rep"), make_user("racer2", "sales_rep")
    race_team = TeamFactory(name="Race", territories=["US"])
    add_rep(race_team, first)
    add_rep(race_team, second)
    lead = lead_in(Stage.MQL, team=race_team, owner=None, stage_entered_at=timezone.now() - dt.timedelta(hours=1))
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def attempt(user) -> None:
        try:
            barrier.wait(timeout=10)
            lifecycle.accept(Lead.objects.get(pk=lead.pk), actor=Actor.person(user))
            outcomes[user.username] = "won"
        except Exception as exc:  # noqa: BLE001 - the loser's error is what we assert on
            outcomes[user.username] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(user,)) for user in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [name for name, outcome in outcomes.items() if outcome == "won"]
    losers = [outcome for outcome in outcomes.values() if outcome != "won"]
    assert len(winners) == 1
    assert len(losers) == 1 and isinstance(losers[0], InvalidTransition)
    assert losers[0].details["current_stage"] == Stage.SAL
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL and lead.owner.username == winners[0]
    assert StageTransition.objects.filter(lead=lead, to_stage=Stage.SAL).count() == 1
