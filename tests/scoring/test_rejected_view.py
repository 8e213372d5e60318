"""Issue 18, point 6: marketing sees the MQLs sales rejected, with reason and note, and the
recycled pool with each lead's cool-down end."""

from __future__ import annotations

import datetime as dt

import pytest

from leads import lifecycle
from leads.lifecycle import Actor
from leads.models import Stage
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def _rejected(rep, *, reason: str, note: str, source: str):
    lead = LeadFactory(source=source, first_name="Ana", last_name=f"{reason}-{source}")
    lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM, owner=rep)
    lead.refresh_from_db()
    lifecycle.reject(lead, actor=Actor.person(rep), reason=reason, note=note)
    return lead


@pytest.fixture
def rejections(team, rep, rep2, active_spec_definition):
    return [
        _rejected(rep, reason="no_budget", note="Budget frozen until Q3", source="webinar"),
        _rejected(rep2, reason="not_a_fit", note="Students, not buyers", source="ebook"),
        _rejected(rep, reason="bad_timing", note="Call back in spring", source="ebook"),
    ]


def test_marketer_sees_each_rejection_with_reason_note_and_rep(client, marketer, rejections):
    client.force_login(marketer)
    html = client.get("/rejected/").content.decode()
    assert "Budget frozen until Q3" in html and "Students, not buyers" in html
    assert "No budget" in html and "Not a fit" in html and "rep2" in html
    assert "3 from" in html


def _rejected_table(response) -> str:
    """The rejections table alone (the recycled pool below it is not filtered)."""
    return response.content.decode().split('id="rejected"')[1].split('id="recycled-pool"')[0]


def test_filters_by_reason_source_and_rep(client, marketer, rep, rejections):
    client.force_login(marketer)
    table = _rejected_table(client.get("/rejected/", {"source": "ebook", "rep": rep.pk}))
    assert "Call back in spring" in table
    assert "Students, not buyers" not in table and "Budget frozen" not in table
    table = _rejected_table(client.get("/rejected/", {"reason": "no_budget"}))
    assert "Budget frozen until Q3" in table and "Call back in spring" not in table


def test_a_period_before_the_rejections_lists_none(client, marketer, rejections):
    client.force_login(marketer)
    html = client.get("/rejected/", {"date_from": "2020-01-01", "date_to": "2020-03-31"}).content.decode()
    assert "No MQL was rejected with these filters." in html


def test_recycled_pool_shows_why_and_when_the_cool_down_ends(client, marketer, rejections):
    recycled = [lead for lead in rejections if lead.last_name.startswith(("no_budget", "bad_timing"))]
    client.force_login(marketer)
    html = client.get("/rejected/").content.decode()
    pool = html.split('id="recycled-pool"')[1]
    for lead in recycled:
        lead.refresh_from_db()
        assert lead.stage == Stage.RECYCLED
        assert (lead.stage_entered_at + dt.timedelta(days=30)).strftime("%-d %b %Y") in pool
    assert "not_a_fit" not in pool  # disqualified leads are not in the nurture pool


def test_reps_are_refused_the_rejected_view(client, rep, rejections):
    client.force_login(rep)
    assert client.get("/rejected/").status_code == 403
