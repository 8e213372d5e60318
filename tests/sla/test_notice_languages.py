"""Issue 24: SLA notices reach each person in their own language and time zone; a manager with
no language of their own reads the team's."""

from __future__ import annotations

import datetime as dt

import pytest

from leads.models import UserProfile
from sla.sweep import run_sweep

from .conftest import MONDAY, make_mql

pytestmark = pytest.mark.django_db


def test_breach_digest_is_in_each_recipients_language_with_their_local_time(team, policies, mailoutbox):
    lead = make_mql(contacted=True)
    owner = lead.owner
    UserProfile.objects.create(user=owner, language="es", time_zone="Europe/Madrid")
    team.language, team.time_zone = "ro", "Europe/Bucharest"
    team.save(update_fields=["language", "time_zone"])

    run_sweep(now=MONDAY + dt.timedelta(days=30))

    by_recipient = {mail.to[0]: mail for mail in mailoutbox}
    spanish = by_recipient[owner.email]
    assert spanish.subject == "LeadFlow SLA: 1 incumplido"
    assert "INCUMPLIDO" in spanish.body and "reciclado a marketing" in spanish.body
    # Due Tuesday 17:00 UTC: 18:00 in Madrid, written day/month/year.
    assert "(vencía 03/03/2026 18:00 CET)" in spanish.body
    romanian = by_recipient["manager@example.com"]  # no profile: the team's language and zone
    assert romanian.subject == "LeadFlow SLA: 1 încălcat"
    assert "ÎNCĂLCAT" in romanian.body and "reciclat către marketing" in romanian.body
    assert "(scadent 03.03.2026, 19:00 EET)" in romanian.body


def test_romanian_subject_uses_the_plural_form_for_the_count(team, policies, mailoutbox):
    leads = [make_mql(contacted=True) for _ in range(4)]
    for user in {lead.owner for lead in leads}:
        UserProfile.objects.create(user=user, language="ro")

    run_sweep(now=MONDAY + dt.timedelta(days=30))

    subjects = {mail.to[0]: mail.subject for mail in mailoutbox}
    assert subjects["rep1@example.com"] == "LeadFlow SLA: 2 încălcate"


def test_a_user_without_a_language_gets_english(team, policies, mailoutbox):
    make_mql(contacted=True)
    run_sweep(now=MONDAY + dt.timedelta(days=30))
    assert all(mail.subject.startswith("LeadFlow SLA: 1 breached") for mail in mailoutbox if "rep" in mail.to[0])
