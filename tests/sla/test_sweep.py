"""The SLA sweep: deadlines on entry, warnings, breaches acted on per policy, idempotent reruns."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from leads import lifecycle
from leads.models import Lead, SlaClock, Stage, StageTransition
from leads.signals import stage_changed
from sla import clocks
from sla.models import BreachAction, SlaBreach
from sla.sweep import run_sweep
from sla.tasks import sla_sweep
from tests.factories import LeadFactory

from .conftest import MONDAY, UTC, make_mql, set_action

pytestmark = pytest.mark.django_db


def test_six_mqls_created_together_are_spread_over_two_reps_each_with_a_deadline(team, policies):
    leads = [make_mql(contacted=True) for _ in range(6)]
    owners = [lead.owner.username for lead in leads]
    assert set(owners) == {"rep1", "rep2"}
    assert owners.count("rep1") == owners.count("rep2") == 3
    assert all(lead.sla_due_at is not None and lead.sla_clock == SlaClock.MQL_DECISION for lead in leads)


def test_mql_deadline_is_two_business_days_after_entry(team, policies):
    friday_noon = dt.datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
    lead = make_mql(contacted=True, at=friday_noon)
    assert lead.sla_due_at == dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    # The warning goes out at 75 % of the clock: 12 business hours in, Monday 16:00.
    assert lead.sla_warn_at == dt.datetime(2026, 3, 9, 16, 0, tzinfo=UTC)


def test_accepting_is_not_a_touch_so_the_speed_to_lead_deadline_set_at_mql_entry_carries_into_sal(team, rep, policies):
    lead = make_mql()
    assert lead.sla_clock == SlaClock.SAL_FIRST_TOUCH
    speed_to_lead_due = lead.sla_due_at
    assert speed_to_lead_due == MONDAY + dt.timedelta(hours=1)
    lifecycle.accept(lead, actor=lifecycle.Actor.person(rep))
    lead.refresh_from_db()
    assert lead.sla_clock == SlaClock.SAL_FIRST_TOUCH
    assert lead.sla_due_at == speed_to_lead_due
    lifecycle.log_touch(lead, actor=lifecycle.Actor.person(rep), kind="call", outcome="no_answer")
    lead.refresh_from_db()
    # The first touch stops speed to lead; the minimum touches are due with qualify-or-drop.
    assert lead.sla_clock == SlaClock.SAL_MIN_TOUCHES
    assert lead.sla_due_at == lead.stage_entered_at + dt.timedelta(days=14)


def test_sweep_thirty_days_later_recycles_every_breached_mql_and_second_run_changes_nothing(team, policies, mailoutbox):
    leads = [make_mql(contacted=True) for _ in range(4)]
    later = MONDAY + dt.timedelta(days=30)

    first = run_sweep(now=later)

    assert first.breached == {BreachAction.RECYCLE: 4}
    for lead in leads:
        lead.refresh_from_db()
        assert lead.stage == Stage.RECYCLED and lead.owner is None and lead.sla_due_at is None
        assert lead.recycle_count == 1
        last = StageTransition.objects.filter(lead=lead).last()
        assert (last.from_stage, last.to_stage, last.reason, last.actor_type) == (
            Stage.MQL,
            Stage.RECYCLED,
            "sla_expired",
            "system",
        )
        breach = SlaBreach.objects.get(lead=lead)
        assert breach.clock == SlaClock.MQL_DECISION and breach.action == BreachAction.RECYCLE
        assert breach.owner.username in {"rep1", "rep2"} and breach.detected_at == later
    recipients = sorted(address for mail in mailoutbox for address in mail.to)
    assert recipients == ["manager@example.com", "rep1@example.com", "rep2@example.com"]
    assert "BREACHED" in mailoutbox[0].body

    transitions_before = StageTransition.objects.count()
    second = run_sweep(now=later)
    assert second.breached_total == 0 and second.emails == 0
    assert StageTransition.objects.count() == transitions_before
    assert SlaBreach.objects.count() == 4


def test_reassign_policy_hands_breached_mql_to_the_other_rep_and_restarts_the_clock(
    team, policies, rep, rep2, mailoutbox
):
    set_action(policies, SlaClock.MQL_DECISION, BreachAction.REASSIGN)
    lead = make_mql(contacted=True)
    first_owner = lead.owner
    later = MONDAY + dt.timedelta(days=3)

    result = run_sweep(now=later)

    lead.refresh_from_db()
    assert result.breached == {BreachAction.REASSIGN: 1}
    assert lead.stage == Stage.MQL and lead.owner not in (None, first_owner)
    assert lead.sla_due_at == policies[SlaClock.MQL_DECISION].due_from(later)
    audit = StageTransition.objects.filter(lead=lead).last()
    assert audit.reason == "sla_expired" and audit.assignment["previous_owner"] == first_owner.username
    assert SlaBreach.objects.get(lead=lead).action == BreachAction.REASSIGN
    recipients = {address for mail in mailoutbox for address in mail.to}
    assert recipients == {"rep1@example.com", "rep2@example.com", "manager@example.com"}
    assert run_sweep(now=later).breached_total == 0


def test_missed_first_touch_notifies_and_keeps_the_sal_clocks_running(team, rep, policies, mailoutbox):
    lead = make_mql()
    lifecycle.accept(lead, actor=lifecycle.Actor.person(rep))
    lead.refresh_from_db()
    later = lead.stage_entered_at + dt.timedelta(days=5)

    result = run_sweep(now=later, simulate=True)

    lead.refresh_from_db()
    assert result.breached == {BreachAction.NOTIFY: 1}
    assert lead.stage == Stage.SAL
    assert lead.sla_clock == SlaClock.SAL_MIN_TOUCHES
    assert lead.sla_due_at == lead.stage_entered_at + dt.timedelta(days=14)
    assert SlaBreach.objects.get(lead=lead).clock == SlaClock.SAL_FIRST_TOUCH
    assert run_sweep(now=later, simulate=True).breached_total == 0
    # Fourteen days on, with no touch at all: the minimum touches breach, and the
    # qualify-or-drop clock recycles it.
    run_sweep(now=lead.stage_entered_at + dt.timedelta(days=15), simulate=True)
    lead.refresh_from_db()
    assert lead.stage == Stage.RECYCLED
    assert list(SlaBreach.objects.filter(lead=lead).order_by("id").values_list("clock", flat=True)) == [
        SlaClock.SAL_FIRST_TOUCH,
        SlaClock.SAL_MIN_TOUCHES,
        SlaClock.SAL_QUALIFY,
    ]


def test_warning_goes_to_owner_once_at_the_warning_share(team, policies, mailoutbox):
    lead = make_mql(contacted=True)
    almost = MONDAY + dt.timedelta(days=1, hours=5)  # Tuesday 14:00: 13 of 16 business hours

    result = run_sweep(now=almost)

    lead.refresh_from_db()
    assert result.warned == 1 and result.breached_total == 0
    assert lead.sla_warned_at == almost and lead.stage == Stage.MQL
    assert [mail.to for mail in mailoutbox] == [[lead.owner.email]]
    assert "due soon" in mailoutbox[0].subject
    assert run_sweep(now=almost + dt.timedelta(minutes=1)).warned == 0


def test_nothing_is_warned_before_the_warning_share(team, policies, mailoutbox):
    make_mql(contacted=True)
    assert run_sweep(now=MONDAY + dt.timedelta(hours=8)).warned == 0
    assert mailoutbox == []


def test_breach_writes_webhook_outbox_rows_for_recycled_and_sla_breached(team, policies):
    from leads.models import WebhookDelivery, WebhookSubscription

    WebhookSubscription.objects.create(url="https://crm.example.com/hook", events=["lead.recycled", "sla.breached"])
    lead = make_mql(contacted=True)

    run_sweep(now=MONDAY + dt.timedelta(days=30), notify=False)

    rows = {(d.event, d.payload["lead"]["id"], d.payload.get("new_stage")) for d in WebhookDelivery.objects.all()}
    assert rows == {("lead.recycled", lead.pk, "recycled"), ("sla.breached", lead.pk, "recycled")}


def test_without_batch_receivers_the_sweep_sends_stage_changed_per_lead(team, policies):
    from leads import webhooks as receivers
    from leads.signals import stage_changed_batch

    lead = make_mql(contacted=True)
    seen = []

    def receiver(sender, transition, lead, **kwargs):
        seen.append((lead.pk, transition.from_stage, transition.to_stage, lead.stage))

    stage_changed_batch.disconnect(dispatch_uid="leads.webhooks.batch_to_outbox")
    stage_changed.connect(receiver)
    try:
        run_sweep(now=MONDAY + dt.timedelta(days=30), notify=False)
    finally:
        stage_changed.disconnect(receiver)
        stage_changed_batch.connect(receivers.batch_to_outbox, dispatch_uid="leads.webhooks.batch_to_outbox")
    assert seen == [(lead.pk, Stage.MQL, Stage.RECYCLED, Stage.RECYCLED)]


def test_dry_run_lists_what_would_breach_and_changes_nothing(team, policies, mailoutbox):
    leads = [make_mql(contacted=True) for _ in range(2)]
    out = StringIO()
    call_command("sla_sweep", "--now", "2026-04-01T12:00:00+00:00", "--dry-run", stdout=out)
    text = out.getvalue()
    assert f"lead {leads[0].pk}\tmql\tmql_decision" in text and "-> recycle" in text
    assert "2 leads would breach by 2026-04-01T12:00:00+00:00" in text
    assert Lead.objects.filter(stage=Stage.MQL).count() == 2
    assert SlaBreach.objects.count() == 0 and mailoutbox == []


def test_command_with_now_acts_as_if_at_that_moment(team, policies):
    lead = make_mql(contacted=True)
    out = StringIO()
    call_command("sla_sweep", "--now", "2026-04-01T12:00:00", "--no-email", stdout=out, stderr=StringIO())
    lead.refresh_from_db()
    assert lead.stage == Stage.RECYCLED
    assert "1 breached (1 recycle)" in out.getvalue()


def test_command_refuses_a_moment_it_cannot_read(db):
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("sla_sweep", "--now", "next friday")


def test_beat_task_runs_the_same_sweep(team, policies):
    lead = make_mql(contacted=True)
    assert sla_sweep.delay(now="2026-04-01T12:00:00+00:00").get() == {"breached": 1, "warned": 0, "emails": 2}
    lead.refresh_from_db()
    assert lead.stage == Stage.RECYCLED


def test_lead_not_yet_due_is_left_alone(team, policies):
    lead = make_mql(contacted=True)
    assert run_sweep(now=MONDAY + dt.timedelta(hours=1)).breached_total == 0
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


def test_switched_off_policy_closes_the_clock_without_a_breach(team, policies):
    lead = make_mql(contacted=True)
    policy = policies[SlaClock.MQL_DECISION]
    policy.active = False
    policy.save(update_fields=["active"])
    run_sweep(now=MONDAY + dt.timedelta(days=30))
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL and lead.sla_due_at is None
    assert SlaBreach.objects.count() == 0


def test_many_breaches_are_handled_in_batches(team, policies):
    leads = [make_mql(contacted=True) for _ in range(7)]
    result = run_sweep(now=MONDAY + dt.timedelta(days=30), batch_size=3, notify=False)
    assert result.batches == 3 and result.breached_total == 7
    assert Lead.objects.filter(pk__in=[lead.pk for lead in leads], stage=Stage.RECYCLED).count() == 7


# --- Minimum touches before "unable to reach" ------------------------------------------------


def _sal(team, rep):
    lead = make_mql(contacted=True)
    if lead.owner != rep:
        lifecycle.reassign(lead, actor=lifecycle.SYSTEM, owner=rep)
    lifecycle.accept(lead, actor=lifecycle.Actor.person(rep))
    return lead


def test_unable_to_reach_is_refused_before_three_calls_and_three_emails(team, rep, policies):
    lead = _sal(team, rep)
    actor = lifecycle.Actor.person(rep)
    for _ in range(2):
        lifecycle.log_touch(lead, actor=actor, kind="call", outcome="no_answer")
    for _ in range(3):
        lifecycle.log_touch(lead, actor=actor, kind="email", outcome="bounced")
    with pytest.raises(lifecycle.TouchesRequired) as refused:
        lifecycle.recycle(lead, actor=actor, reason="unable_to_reach")
    assert "2 of 3 calls logged" in refused.value.message
    assert refused.value.code == "touches_required"
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL


def test_unable_to_reach_is_accepted_after_three_calls_and_three_emails(team, rep, policies):
    lead = _sal(team, rep)
    actor = lifecycle.Actor.person(rep)
    for kind in ("call", "email") * 3:
        lifecycle.log_touch(lead, actor=actor, kind=kind, outcome="no_answer")
    lifecycle.recycle(lead, actor=actor, reason="unable_to_reach")
    lead.refresh_from_db()
    assert lead.stage == Stage.RECYCLED


def test_touches_older_than_the_window_do_not_count(team, rep, policies):
    lead = _sal(team, rep)
    actor = lifecycle.Actor.person(rep)
    for kind in ("call", "email") * 3:
        lifecycle.log_touch(lead, actor=actor, kind=kind, outcome="no_answer")
    lead.refresh_from_db()
    missing = clocks.missing_touches(lead, now=timezone.now() + dt.timedelta(days=15))
    assert missing == ["0 of 3 calls logged", "0 of 3 emails logged"]


def test_unassigned_lead_is_not_emailed_to_anyone_but_the_manager(policies, manager, mailoutbox):
    from tests.factories import TeamFactory

    TeamFactory(name="Empty", territories=["US"], is_fallback=True, manager=manager)
    lead = LeadFactory()
    lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM, at=MONDAY)
    run_sweep(now=MONDAY + dt.timedelta(days=30))
    assert [mail.to for mail in mailoutbox] == [["manager@example.com"]]
