"""A CSV history imported through the historical import shows up in the reports, with numbers
computed here from the rows themselves."""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics

import pytest

from reports import selectors
from reports.selectors import ReportFilters

importer = pytest.importorskip("leads.services.importer")

START = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)


def _rows() -> list[dict[str, str]]:
    rows = []
    for n in range(24):
        mql = START + dt.timedelta(days=n, hours=n % 5)
        row = {
            "external_id": f"crm-{n}",
            "email": f"hist{n}@import.example",
            "source": "import",
            "country": "US",
            "created_at": (mql - dt.timedelta(days=3)).isoformat(),
            "became_mql_at": mql.isoformat(),
        }
        kind = n % 4
        if kind in (0, 1):  # the full line
            row["became_sal_at"] = (mql + dt.timedelta(days=1)).isoformat()
            row["became_sql_at"] = (mql + dt.timedelta(days=5)).isoformat()
            if kind == 0:
                row["became_won_at"] = (mql + dt.timedelta(days=10 + n)).isoformat()
        elif kind == 2:  # straight from MQL to won, as some CRMs export it
            row["became_won_at"] = (mql + dt.timedelta(days=3 + n, hours=6)).isoformat()
        else:  # rejected back to marketing
            row["became_recycled_at"] = (mql + dt.timedelta(hours=20)).isoformat()
            row["rejection_reason"] = "bad_timing"
        rows.append(row)
    return rows


def _csv(rows: list[dict[str, str]]) -> io.StringIO:
    fields = sorted({key for row in rows for key in row})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    out.seek(0)
    return out


def test_imported_history_feeds_funnel_efficiency_and_mql_to_won(db):
    rows = _rows()
    result = importer.import_leads(_csv(rows), user=None)
    assert result.created == len(rows) and not result.rejected

    date_from, date_to = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
    in_range = [r for r in rows if date_from <= dt.datetime.fromisoformat(r["became_mql_at"]).date() <= date_to]
    reached_sal = [r for r in in_range if {"became_sal_at", "became_sql_at", "became_won_at"} & r.keys()]
    reached_sql = [r for r in in_range if {"became_sql_at", "became_won_at"} & r.keys()]
    kwargs = {"date_from": date_from, "date_to": date_to, "filters": ReportFilters(source="import")}

    efficiency = selectors.efficiency(**kwargs)
    assert (efficiency["mql"], efficiency["sal"], efficiency["sql"]) == (
        len(in_range),
        len(reached_sal),
        len(reached_sql),
    )
    assert efficiency["mql_to_sql_rate"] == round(len(reached_sql) / len(in_range), 4)

    def entered(column: str) -> int:
        return sum(
            1 for r in rows if column in r and date_from <= dt.datetime.fromisoformat(r[column]).date() <= date_to
        )

    stages = {row["stage"]: row["entered"] for row in selectors.funnel(**kwargs)["stages"]}
    assert stages["mql"] == entered("became_mql_at")
    assert stages["won"] == entered("became_won_at")
    assert stages["recycled"] == entered("became_recycled_at")

    won = [
        r
        for r in rows
        if "became_won_at" in r and date_from <= dt.datetime.fromisoformat(r["became_won_at"]).date() <= date_to
    ]
    expected_days = statistics.median(
        (dt.datetime.fromisoformat(r["became_won_at"]) - dt.datetime.fromisoformat(r["became_mql_at"])).total_seconds()
        / 86400
        for r in won
    )
    velocity = selectors.velocity(**kwargs)
    assert velocity["mql_to_won"]["count"] == len(won)
    assert velocity["mql_to_won"]["median_days"] == round(expected_days, 2)


def test_reimporting_the_same_history_changes_no_report(db):
    rows = _rows()
    importer.import_leads(_csv(rows), user=None)
    kwargs = {"date_from": dt.date(2026, 10, 1), "date_to": dt.date(2026, 12, 31), "filters": ReportFilters()}
    before = selectors.funnel(**kwargs)
    again = importer.import_leads(_csv(rows), user=None)
    assert again.created == 0
    assert selectors.funnel(**kwargs) == before
