"""`leads.services.importer`: the historical import of SPEC section 9."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model

from leads.models import Lead, Stage, StageTransition
from leads.services.importer import Reject, import_leads

pytestmark = pytest.mark.django_db

HEADER = [
    "external_id",
    "email",
    "company",
    "country",
    "employees",
    "owner",
    "created_at",
    "became_mql_at",
    "became_sal_at",
    "became_sql_at",
    "became_won_at",
    "became_recycled_at",
    "rejection_reason",
]


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue()


def _big_file(n: int) -> tuple[str, set[int]]:
    rows, bad_lines = [], set()
    for i in range(n):
        line = i + 2
        if i % 997 == 0:
            rows.append([f"h-{i}", "not-an-email", "Acme", "US", "10", "", "", "", "", "", "", "", ""])
            bad_lines.add(line)
        elif i % 1499 == 0:
            rows.append([f"h-{i}", f"d{i}@example.com", "Acme", "US", "10", "", "", "31-02-2025", "", "", "", "", ""])
            bad_lines.add(line)
        elif i % 3 == 0:
            rows.append(
                [
                    f"h-{i}",
                    f"p{i}@example.com",
                    "Acme",
                    "DE",
                    "50",
                    "legacy.rep",
                    "2025-01-02",
                    "05-01-2025 09:30",
                    "2025-01-06T10:00:00Z",
                    "",
                    "",
                    "",
                    "",
                ]
            )
        else:
            rows.append([f"h-{i}", f"p{i}@example.com", "Beta", "US", "", "", "", "", "", "", "", "", ""])
    return _csv(rows), bad_lines


def test_10000_row_import_reports_bad_rows_imports_the_rest_and_reimport_creates_nothing():
    text, bad_lines = _big_file(10_000)
    result = import_leads(io.StringIO(text))
    assert {r.line for r in result.rejected} == bad_lines
    assert result.created == 10_000 - len(bad_lines)
    assert Lead.objects.count() == result.created
    assert result.created_owners == ["legacy.rep"]
    assert not get_user_model().objects.get(username="legacy.rep").is_active
    transitions_before = StageTransition.objects.count()
    assert transitions_before > 0
    again = import_leads(io.StringIO(text))
    assert again.created == 0 and again.updated == 0
    assert Lead.objects.count() == result.created
    assert StageTransition.objects.count() == transitions_before


def test_import_writes_dated_history_and_sets_current_stage():
    text = _csv(
        [
            [
                "crm-1",
                "a@example.com",
                "Acme",
                "US",
                "",
                "",
                "2025-01-01",
                "2025-01-03",
                "2025-01-04 08:00",
                "2025-01-10",
                "12-02-2025",
                "",
                "",
            ]
        ]
    )
    import_leads(io.StringIO(text))
    lead = Lead.objects.get(external_id="crm-1")
    assert lead.stage == Stage.WON
    stages = list(StageTransition.objects.filter(lead=lead).values_list("to_stage", flat=True))
    assert stages == ["mql", "sal", "sql", "won"]
    assert lead.stage_entered_at.date().isoformat() == "2025-02-12"


def test_rejection_reason_must_be_known():
    text = _csv([["crm-2", "b@example.com", "", "", "", "", "", "2025-01-03", "", "", "", "2025-01-05", "meh"]])
    result = import_leads(io.StringIO(text))
    assert result.rejected and result.rejected[0].line == 2
    assert result.rejected[0].column == "rejection_reason"


def test_header_names_are_matched_loosely_short_rows_read_blank_and_blank_lines_are_skipped():
    text = (
        " External_ID ,EMAIL,Company,,company\r\n"
        "crm-9, Nine@Example.com ,Ignored,stray,Nine Ltd,extra cell\r\n"
        "\r\n"
        "crm-10,ten@example.com\r\n"
        ",,Acme\r\n"
    )
    result = import_leads(io.StringIO(text))
    assert (result.created, result.rejected) == (
        2,
        [Reject(5, "external_id", "external_id, email or phone is required")],
    )
    nine, ten = Lead.objects.get(external_id="crm-9"), Lead.objects.get(external_id="crm-10")
    assert (nine.email, nine.company) == ("nine@example.com", "Nine Ltd")  # of two columns, the later
    assert (ten.email, ten.company) == ("ten@example.com", "")


def test_an_email_moved_to_an_existing_lead_in_the_file_is_not_taken_twice():
    """Rows apply in file order: once a row gives lead X a new address, a later row naming that
    address is the same lead; an address a new lead of the file took is not taken by another."""
    import_leads(io.StringIO(_csv([["x-1", "old@example.com", "Acme", "US", "10", "", "", "", "", "", "", "", ""]])))
    moved = import_leads(
        io.StringIO(
            _csv(
                [
                    ["x-1", "new@example.com", "Acme", "US", "10", "", "", "", "", "", "", "", ""],
                    ["", "new@example.com", "Acme Corp", "US", "12", "", "", "", "", "", "", "", ""],
                ]
            )
        )
    )
    assert (moved.created, moved.rejected) == (0, [])
    lead = Lead.objects.get(external_id="x-1")
    assert (lead.email, lead.company, lead.employees) == ("new@example.com", "Acme Corp", 12)

    taken = import_leads(
        io.StringIO(
            _csv(
                [
                    ["", "fresh@example.com", "Beta", "DE", "5", "", "", "", "", "", "", "", ""],
                    ["x-1", "fresh@example.com", "Acme", "US", "10", "", "", "", "", "", "", "", ""],
                ]
            )
        )
    )
    assert (taken.created, taken.rejected) == (1, [])
    assert Lead.objects.get(external_id="x-1").email == "new@example.com"
    assert Lead.objects.get(email="fresh@example.com").company == "Beta"
    assert Lead.objects.count() == 2
