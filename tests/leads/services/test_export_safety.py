"""Issue 21 point 5: CSV exports are safe to open in a spreadsheet (OWASP CSV injection), UTF-8
with a BOM, and streamed."""

from __future__ import annotations

import csv
import io

import pytest
from django.http import StreamingHttpResponse
from rest_framework.test import APIClient

from leads.services.importer import rejects_csv
from reports.csv_cells import safe_cell
from reports.export import report_csv
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_text_cell_starting_like_a_formula_is_neutralised(start):
    assert safe_cell(f"{start}HYPERLINK(1)") == f"'{start}HYPERLINK(1)"


def test_plain_text_and_numbers_are_left_as_they_are():
    assert [safe_cell("Acme"), safe_cell(-3), safe_cell(1.5), safe_cell("")] == ["Acme", -3, 1.5, ""]


def test_lead_export_neutralises_formula_cells_and_starts_with_a_bom(marketer):
    client = APIClient()
    client.force_authenticate(marketer)
    LeadFactory(
        first_name='=HYPERLINK("http://evil.example","x")',
        last_name="@SUM(A1)",
        company="+1+1",
        job_title="-2",
        source="\tcmd",
    )
    response = client.get("/api/v1/leads/export/")
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    raw = b"".join(response.streaming_content).decode("utf-8")
    assert raw.startswith("\ufeff")
    row = next(csv.DictReader(io.StringIO(raw.lstrip("\ufeff"))))
    assert row["first_name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert (row["last_name"], row["company"], row["job_title"], row["source"]) == (
        "'@SUM(A1)",
        "'+1+1",
        "'-2",
        "'\tcmd",
    )


def test_report_csv_neutralises_a_source_named_like_a_formula():
    data = {"sources": [{"source": "=cmd|' /C calc'!A0", "mql": 1, "sql": 0, "mql_to_sql_rate": 0.0}], "groups": []}
    text = report_csv("sources", data)
    assert text.startswith("\ufeffgroup,source")
    assert "'=cmd" in text


def test_the_rejects_csv_neutralises_cells():
    text = "".join(rejects_csv([{"line": 3, "column": "company", "reason": "=1+1"}]))
    assert text == "\ufeffline,column,reason\r\n3,company,'=1+1\r\n"
