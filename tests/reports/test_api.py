"""The report endpoints: who may read them, the inputs they check, JSON and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from leads.tokens import issue_token
from reports import selectors
from reports.selectors import ReportFilters
from tests.reports.conftest import RANGE

URL = "/api/v1/reports/{}/"
PARAMS = {"from": RANGE[0].isoformat(), "to": RANGE[1].isoformat()}


@pytest.fixture
def client_for():
    def make(user):
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.mark.parametrize("name", sorted(selectors.REPORTS))
def test_manager_gets_the_same_numbers_as_the_selector(history, manager, client_for, name):
    response = client_for(manager).get(URL.format(name), PARAMS)
    assert response.status_code == 200
    expected = selectors.REPORTS[name](date_from=RANGE[0], date_to=RANGE[1], filters=ReportFilters())
    body = response.json()
    assert {body.pop("as_of"), body.pop("lag_seconds")} and body == expected


def test_marketing_reads_the_funnel_with_a_token(history, marketer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user=marketer, name='test')[1]}")
    response = client.get(URL.format("funnel"), PARAMS)
    assert response.status_code == 200
    assert response.json()["stages"][1] == {"stage": "mql", "entered": 5, "to_next_rate": 0.6}


def test_rep_cannot_read_reports(history, rep, client_for):
    response = client_for(rep).get(URL.format("efficiency"), PARAMS)
    assert response.status_code == 403


def test_anonymous_cannot_read_reports(history):
    assert APIClient().get(URL.format("efficiency"), PARAMS).status_code in (401, 403)


def test_filters_are_echoed_and_applied(history, manager, client_for, team, rep):
    params = {**PARAMS, "source": "webinar", "team": team.pk, "owner": rep.username, "country": "us"}
    body = client_for(manager).get(URL.format("efficiency"), params).json()
    assert body["filters"] == {
        "from": "2026-11-02",
        "to": "2026-11-15",
        "source": "webinar",
        "team": team.pk,
        "owner": "rep1",
        "country": "US",
        "group_by": None,
    }
    assert (body["mql"], body["sal"], body["sql"]) == (3, 2, 1)


def test_group_by_splits_into_groups(history, manager, client_for):
    body = client_for(manager).get(URL.format("efficiency"), {**PARAMS, "group_by": "source"}).json()
    assert [(g["key"], g["mql"], g["sql"]) for g in body["groups"]] == [("ads", 2, 1), ("webinar", 3, 1)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "02/11/2026", "to": "2026-11-15"}, "from"),
        ({"from": "2026-11-02", "to": "yesterday"}, "to"),
        ({"from": "2026-11-15", "to": "2026-11-02"}, "to"),
        ({**PARAMS, "group_by": "colour"}, "group_by"),
        ({**PARAMS, "team": 9999}, "team"),
        ({**PARAMS, "owner": "nobody"}, "owner"),
        ({**PARAMS, "country": "USA"}, "country"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(history, manager, client_for, params, field):
    response = client_for(manager).get(URL.format("funnel"), params)
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_csv_export_of_the_funnel(history, manager, client_for):
    response = client_for(manager).get(URL.format("funnel"), {**PARAMS, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="funnel.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    by_stage = {row["stage"]: row for row in rows}
    assert by_stage["sal"]["entered"] == "3"
    assert by_stage["mql"]["to_next_rate"] == "0.6"


@pytest.mark.parametrize("name", sorted(selectors.REPORTS))
def test_every_report_exports_csv(history, manager, client_for, name):
    response = client_for(manager).get(URL.format(name), {**PARAMS, "format": "csv", "group_by": "owner"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) > 1


def test_velocity_csv_has_a_row_per_owner_and_measure(history, manager, client_for):
    response = client_for(manager).get(URL.format("velocity"), {**PARAMS, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    rep2 = next(r for r in rows if r["scope"] == "owner" and r["key"] == "rep2" and r["measure"] == "mql_decision")
    assert rep2["median"] == "16.0"
    assert rep2["count"] == "3"


def test_bad_input_in_csv_is_a_400_listing_the_field(history, manager, client_for):
    response = client_for(manager).get(URL.format("funnel"), {"format": "csv", "from": "soon", "to": "2026-11-02"})
    assert response.status_code == 400
    assert "from" in response.content.decode("utf-8-sig")


def test_without_dates_a_report_covers_the_90_days_ending_today(manager, client_for):
    today = timezone.localdate()
    body = client_for(manager).get(URL.format("efficiency")).json()
    assert body["filters"]["to"] == today.isoformat()
    assert body["filters"]["from"] == (today - dt.timedelta(days=89)).isoformat()

    only_to = client_for(manager).get(URL.format("funnel"), {"to": "2026-03-31"}).json()
    assert (only_to["filters"]["from"], only_to["filters"]["to"]) == ("2026-01-01", "2026-03-31")
