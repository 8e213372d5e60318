"""Time travel only when asked (issue 19, point 7): a sweep at a future moment simulates, and
says so in every breach row it writes."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from leads.models import Lead, Stage
from sla.models import SlaBreach
from sla.sweep import FutureMoment, run_sweep
from sla.tasks import sla_sweep

from .conftest import make_mql

pytestmark = pytest.mark.django_db


def _future() -> dt.datetime:
    return (timezone.now() + dt.timedelta(days=30)).replace(microsecond=0)


def test_command_refuses_a_future_moment_without_simulate_and_writes_nothing(team, policies, mailoutbox):
    lead = make_mql(contacted=True, at=timezone.now())
    with pytest.raises(CommandError, match="in the future.*--simulate"):
        call_command("sla_sweep", "--now", _future().isoformat(), stdout=StringIO(), stderr=StringIO())
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert SlaBreach.objects.count() == 0 and mailoutbox == []


def test_command_with_simulate_records_the_missed_deadline_the_simulated_moment_and_the_real_time(team, policies):
    lead = make_mql(contacted=True, at=timezone.now())
    due = lead.sla_due_at
    future = _future()
    before = timezone.now()
    out = StringIO()

    call_command("sla_sweep", "--now", future.isoformat(), "--simulate", "--no-email", stdout=out, stderr=StringIO())

    breach = SlaBreach.objects.get(lead=lead)
    assert breach.due_at == due
    assert breach.detected_at == future
    assert before <= breach.recorded_at <= timezone.now()
    assert breach.simulated
    assert out.getvalue().startswith("SIMULATED ")


def test_dry_run_at_a_future_moment_still_lists_what_would_breach(team, policies):
    make_mql(contacted=True, at=timezone.now())
    out = StringIO()
    call_command("sla_sweep", "--now", _future().isoformat(), "--dry-run", stdout=out)
    assert "1 leads would breach" in out.getvalue()
    assert SlaBreach.objects.count() == 0


def test_beat_task_refuses_a_future_moment(team, policies):
    lead = make_mql(contacted=True, at=timezone.now())
    with pytest.raises(FutureMoment):
        sla_sweep.delay(now=_future().isoformat()).get()
    assert Lead.objects.get(pk=lead.pk).stage == Stage.MQL
    assert SlaBreach.objects.count() == 0


def test_a_sweep_at_the_present_is_not_marked_simulated(team, policies):
    lead = make_mql(contacted=True, at=timezone.now() - dt.timedelta(days=30))
    run_sweep(notify=False)
    breach = SlaBreach.objects.get(lead=lead)
    assert not breach.simulated
    assert breach.detected_at <= breach.recorded_at
