"""Issue 18, point 7: won deals by the attributes fit rules use, beside all MQLs of the period."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leads import lifecycle
from leads.lifecycle import Actor
from leads.models import Stage
from scoring.selectors import won_profile
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def _mql(manager, *, won: bool, **fields):
    lead = LeadFactory(**fields)
    lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM)
    if won:
        lead.refresh_from_db()
        lifecycle.override(lead, to_stage=Stage.WON, actor=Actor.person(manager), note="closed in the CRM")
    return lead


@pytest.fixture
def mqls(team, manager):
    _mql(manager, won=True, industry="Software", employees=250, job_title="VP Sales", country="US", source="webinar")
    _mql(
        manager,
        won=True,
        industry="Software",
        employees=1200,
        job_title="Chief Revenue Officer",
        country="US",
        source="ebook",
    )
    _mql(manager, won=False, industry="Software", employees=30, job_title="Sales Manager", country="CA", source="ebook")
    _mql(manager, won=False, industry="Retail", employees=300, job_title="Analyst", country="US", source="ebook")


def _row(profile, attribute, value):
    return next(row for row in profile[attribute] if row["value"] == value)


def test_profile_counts_mqls_and_wins_per_value(mqls):
    today = timezone.localdate()
    profile = won_profile(date_from=today - dt.timedelta(days=1), date_to=today)
    software = _row(profile, "industry", "Software")
    assert (software["mqls"], software["won"]) == (3, 2)
    assert _row(profile, "industry", "Retail")["won"] == 0
    assert _row(profile, "size_band", "200–999") == {"value": "200–999", "mqls": 2, "won": 1, "win_rate": 0.5}
    assert _row(profile, "seniority", "VP")["won"] == 1
    assert _row(profile, "seniority", "C-level / founder")["won"] == 1
    assert _row(profile, "seniority", "Manager")["won"] == 0
    assert _row(profile, "seniority", "other")["mqls"] == 1


def test_marketer_reads_the_profile_page_and_reps_are_refused(client, marketer, rep, mqls):
    client.force_login(marketer)
    html = client.get("/won-profile/").content.decode()
    assert 'id="profile-industry"' in html and "Software" in html and "67%" in html
    client.force_login(rep)
    assert client.get("/won-profile/").status_code == 403
