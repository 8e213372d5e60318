"""The sweep's windows and workers: due ids read once, claimed batch by batch with the deadline
checked again under the lock; a big backlog shared by several connections; digests that count
what they do not list."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from leads import lifecycle
from leads.models import Lead, SlaClock, Stage, StageTransition
from sla import clocks, sweep
from sla import due as sla_due
from sla.models import BreachAction, SlaBreach
from sla.sweep import run_sweep
from tests.factories import TeamFactory, add_rep, make_user

from .conftest import MONDAY, make_mql, run_together, set_action

pytestmark = pytest.mark.django_db

LATER = MONDAY + dt.timedelta(days=30)


def test_window_lists_every_due_lead_once_and_nothing_that_is_not_due(team, policies):
    due = [make_mql(contacted=True) for _ in range(5)]
    make_mql(contacted=True, at=LATER)  # entered MQL at LATER: not due yet
    window = sla_due.due_sla_window(now=LATER, limit=100)
    assert sorted(window) == sorted(lead.pk for lead in due)
    assert len(sla_due.due_sla_window(now=LATER, limit=3)) == 3


def test_lead_accepted_after_the_window_was_read_is_not_breached(team, rep, policies):
    first, second, third = (make_mql(contacted=True) for _ in range(3))
    window = sla_due.due_sla_window(now=LATER, limit=100)
    lifecycle.accept(second, actor=lifecycle.Actor.person(second.owner))

    done = sla_due.expire_sla_batch(now=LATER, policies=clocks.active_policies(), limit=100, lead_ids=window)

    assert sorted(item.lead_id for item in done) == sorted([first.pk, third.pk])
    second.refresh_from_db()
    assert second.stage == Stage.SAL
    assert not SlaBreach.objects.filter(lead=second).exists()
    assert not StageTransition.objects.filter(lead=second, reason="sla_expired").exists()


def test_batch_of_a_window_acts_only_on_its_own_ids(team, policies):
    leads = [make_mql(contacted=True) for _ in range(4)]
    done = sla_due.expire_sla_batch(
        now=LATER, policies=clocks.active_policies(), limit=100, lead_ids=[leads[1].pk, leads[3].pk]
    )
    assert sorted(item.lead_id for item in done) == sorted([leads[1].pk, leads[3].pk])
    assert Lead.objects.filter(stage=Stage.MQL).count() == 2


def test_breaches_of_two_clocks_in_one_batch_each_name_their_policy(team, policies):
    mql = make_mql(contacted=True)
    sal = make_mql()
    lifecycle.accept(sal, actor=lifecycle.Actor.person(sal.owner))
    sal.refresh_from_db()
    # The SAL was never touched: its speed-to-lead hour is long gone, its 14 days are not; the MQL's two
    # business days are over too.
    result = run_sweep(now=sal.stage_entered_at + dt.timedelta(days=5), notify=False, simulate=True)
    assert result.breached == {BreachAction.RECYCLE: 1, BreachAction.NOTIFY: 1}
    breaches = {b.lead_id: (b.clock, b.policy.clock, b.action) for b in SlaBreach.objects.all()}
    assert breaches == {
        mql.pk: (SlaClock.MQL_DECISION, SlaClock.MQL_DECISION, BreachAction.RECYCLE),
        sal.pk: (SlaClock.SAL_FIRST_TOUCH, SlaClock.SAL_FIRST_TOUCH, BreachAction.NOTIFY),
    }


def test_digest_lists_fifty_breaches_and_counts_the_rest(policies, manager, mailoutbox):
    solo = TeamFactory(name="Solo", territories=["US"], is_fallback=True, manager=manager)
    add_rep(solo, make_user("only", "sales_rep"))
    for _ in range(sweep.DIGEST_LINES + 3):
        make_mql(contacted=True)

    result = run_sweep(now=LATER)

    assert result.breached_total == sweep.DIGEST_LINES + 3
    by_recipient = {mail.to[0]: mail for mail in mailoutbox}
    assert set(by_recipient) == {"only@example.com", "manager@example.com"}
    for mail in by_recipient.values():
        lines = mail.body.strip().splitlines()
        assert mail.subject == f"LeadFlow SLA: {sweep.DIGEST_LINES + 3} breached"
        assert len(lines) == sweep.DIGEST_LINES + 1
        assert all(line.startswith("BREACHED") for line in lines[:-1])
        assert lines[-1] == "... and 3 more (see the breaches page)."


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_backlog_shared_by_workers_and_a_second_sweep_acts_on_each_breach_once(team, policies):
    leads = [make_mql(contacted=True) for _ in range(60)]
    results, errors = run_together(lambda: run_sweep(now=LATER, batch_size=4, notify=False, workers=3))

    assert errors == []
    assert sum(result.breached_total for result in results) == 60
    assert Lead.objects.filter(stage=Stage.RECYCLED, recycle_count=1).count() == 60
    assert Counter(SlaBreach.objects.values_list("lead_id", flat=True)) == {lead.pk: 1 for lead in leads}
    assert Counter(StageTransition.objects.filter(reason="sla_expired").values_list("lead_id", flat=True)) == {
        lead.pk: 1 for lead in leads
    }
    assert run_sweep(now=LATER, workers=3).breached_total == 0


def test_digest_of_a_rep_whose_breach_comes_last_still_lists_it(policies, manager, mailoutbox):
    solo = TeamFactory(name="Solo", territories=["US"], is_fallback=True, manager=manager)
    busy = make_user("busy", "sales_rep")
    add_rep(solo, busy)
    leads = [make_mql(contacted=True) for _ in range(sweep.DIGEST_LINES + 3)]
    late = make_user("late", "sales_rep")
    add_rep(solo, late)
    Lead.objects.filter(pk=leads[-1].pk).update(owner=late)

    run_sweep(now=LATER)

    by_recipient = {mail.to[0]: mail.body.strip().splitlines() for mail in mailoutbox}
    assert len(by_recipient["late@example.com"]) == 1
    assert f"/leads/{leads[-1].pk}/" in by_recipient["late@example.com"][0]
    assert by_recipient["busy@example.com"][-1] == "... and 2 more (see the breaches page)."
    assert by_recipient["manager@example.com"][-1] == "... and 3 more (see the breaches page)."
    assert len(by_recipient["manager@example.com"]) == sweep.DIGEST_LINES + 1


def test_breach_and_warning_emails_link_to_the_lead_with_the_configured_base_url(team, policies, mailoutbox, settings):
    settings.LEADFLOW_BASE_URL = "https://leadflow.example.com/"
    breached = make_mql(contacted=True)
    # Monday 13:00, two days before LATER: 12 of its 16 business hours gone (the 75 % warning).
    warned = make_mql(contacted=True, at=LATER - dt.timedelta(days=1, hours=20))

    run_sweep(now=LATER)

    body = "\n".join(mail.body for mail in mailoutbox)
    assert f"https://leadflow.example.com/leads/{breached.pk}/" in body
    assert f"https://leadflow.example.com/leads/{warned.pk}/" in body
    assert " /leads/" not in body  # no link left relative


def test_breach_notice_names_the_rep_the_lead_was_reassigned_to(team, policies, rep, rep2, mailoutbox, settings):
    settings.LEADFLOW_BASE_URL = "https://leadflow.example.com"
    set_action(policies, SlaClock.MQL_DECISION, BreachAction.REASSIGN)
    lead = make_mql(contacted=True)
    new_owner = rep2 if lead.owner == rep else rep

    run_sweep(now=LATER)

    body = "\n".join(mail.body for mail in mailoutbox)
    assert f"reassigned to {new_owner.username}" in body
    assert f"https://leadflow.example.com/leads/{lead.pk}/" in body


def test_breach_notice_says_left_unassigned_when_no_rep_could_take_the_lead(policies, manager, mailoutbox):
    solo = TeamFactory(name="Solo", territories=["US"], is_fallback=True, manager=manager)
    add_rep(solo, make_user("only", "sales_rep"))
    set_action(policies, SlaClock.MQL_DECISION, BreachAction.REASSIGN)
    lead = make_mql(contacted=True)

    run_sweep(now=LATER)

    lead.refresh_from_db()
    assert lead.owner is None and lead.stage == Stage.MQL
    body = "\n".join(mail.body for mail in mailoutbox)
    assert "left unassigned (no rep available)" in body
    assert "reassigned" not in body


def test_breach_notice_says_recycled_when_the_policy_recycles(team, policies, mailoutbox):
    make_mql(contacted=True)
    run_sweep(now=LATER)
    assert "recycled to marketing" in mailoutbox[0].body
