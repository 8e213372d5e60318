"""Issue 21 point 4: every bad input to the historical import is a clear per-row or request
error, never a 500, and nothing is half-written."""

from __future__ import annotations

import codecs
import csv
import io

import pytest
from django.contrib.auth import get_user_model

from leads.models import ImportJob, Lead
from tests.factories import make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/import/"


@pytest.fixture(autouse=True)
def _import_dir(settings, tmp_path):
    settings.IMPORT_DIR = tmp_path / "imports"


def _text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _post(client, body: bytes | str, content_type: str = "text/csv"):
    return client.generic("POST", URL, body.encode() if isinstance(body, str) else body, content_type=content_type)


def test_a_bad_value_at_row_1500_rejects_that_row_only_and_the_others_are_written(as_marketer):
    rows = [[f"e-{i}", f"e{i}@example.com", "50"] for i in range(2000)]
    rows[1499][2] = "fifty"
    response = _post(as_marketer, _text(["external_id", "email", "employees"], rows))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["rejected_count"]) == (1999, 1)
    assert body["rejected"] == [{"line": 1501, "column": "employees", "reason": "'fifty' is not a whole number"}]
    assert not Lead.objects.filter(external_id="e-1499").exists()


def test_an_unreadable_csv_late_in_the_file_writes_nothing(as_marketer):
    rows = [[f"u-{i}", f"u{i}@example.com", "Acme"] for i in range(1500)]
    rows.append(["u-x", "ux@example.com", "x" * 200_000])  # past the csv module's field limit
    response = _post(as_marketer, _text(["external_id", "email", "company"], rows))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert "file" in response.json()["fields"]
    assert Lead.objects.count() == 0


@pytest.mark.parametrize("value", ["²", "١٢", "1e5", "12.5", "-3", "NaN", " 1 2"])
def test_numbers_are_parsed_strictly(as_marketer, value):
    response = _post(as_marketer, _text(["email", "employees"], [["n@example.com", value]]))
    assert response.status_code == 200
    assert [r["column"] for r in response.json()["rejected"]] == ["employees"]
    assert Lead.objects.count() == 0


def test_thousands_separators_are_numbers():
    from leads.services.importer import import_leads

    result = import_leads([{"email": "t@example.com", "employees": "1,200", "annual_revenue": "2,500,000.50"}])
    assert result.rejected == []
    lead = Lead.objects.get()
    assert (lead.employees, str(lead.annual_revenue)) == (1200, "2500000.50")


def test_a_nul_byte_rejects_its_row_with_the_column(as_marketer):
    text = "email,company\r\nok@example.com,Acme\r\nnul@example.com,Ac\x00me\r\n"
    response = _post(as_marketer, text)
    assert response.status_code == 200
    assert response.json()["rejected"] == [{"line": 3, "column": "company", "reason": "contains a NUL byte"}]
    assert list(Lead.objects.values_list("email", flat=True)) == ["ok@example.com"]


@pytest.mark.parametrize(
    ("encode", "label"),
    [
        (lambda t: t.encode("utf-8"), "UTF-8"),
        (lambda t: codecs.BOM_UTF8 + t.encode("utf-8"), "UTF-8 with BOM"),
        (lambda t: t.encode("utf-16"), "UTF-16"),
        (lambda t: t.encode("cp1252"), "Windows-1252"),
        (lambda t: t.encode("latin-1"), "Windows-1252"),
    ],
)
def test_the_encoding_is_detected_and_stated(as_marketer, encode, label):
    text = "email,first_name,company\r\njose@example.com,José,Müller Straße GmbH\r\nzoe@example.com,Zoë,Café Ltd\r\n"
    response = _post(as_marketer, encode(text))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["encoding"], body["created"], body["rejected"]) == (label, 2, [])
    assert Lead.objects.get(email="jose@example.com").company == "Müller Straße GmbH"
    assert Lead.objects.get(email="zoe@example.com").first_name == "Zoë"


def test_a_file_without_header_row_is_refused_naming_the_expected_columns(as_marketer):
    response = _post(as_marketer, "x-1,a@example.com,Acme\r\nx-2,b@example.com,Beta\r\n")
    assert response.status_code == 400
    body = response.json()
    assert "external_id" in body["detail"] and "email" in body["detail"] and "phone" in body["detail"]
    assert Lead.objects.count() == 0


def test_an_upload_above_the_size_limit_is_413(as_marketer, settings):
    settings.IMPORT_MAX_BYTES = 1000
    text = _text(["email"], [[f"s{i}@example.com"] for i in range(100)])
    response = _post(as_marketer, text)
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    upload = io.BytesIO(text.encode())
    upload.name = "big.csv"
    assert as_marketer.post(URL, {"file": upload}, format="multipart").status_code == 413
    assert Lead.objects.count() == 0


def test_an_owner_naming_a_staff_user_or_a_non_rep_is_rejected(as_marketer, manager, rep):
    make_user("gone", "sales_rep", is_active=False)
    rows = [
        ["a@example.com", "manager"],
        ["b@example.com", "marketer"],
        ["c@example.com", "gone"],
        ["d@example.com", "rep1"],
        ["e@example.com", "new.rep"],
    ]
    body = _post(as_marketer, _text(["email", "owner"], rows)).json()
    assert [(r["line"], r["column"]) for r in body["rejected"]] == [(2, "owner"), (3, "owner"), (4, "owner")]
    assert "staff" in body["rejected"][0]["reason"]
    assert body["created"] == 2 and body["created_owners"] == ["new.rep"]
    assert get_user_model().objects.get(username="manager").is_staff
    assert not get_user_model().objects.get(username="manager").groups.filter(name="sales_rep").exists()


def test_reimporting_the_same_file_changes_nothing(as_marketer):
    text = _text(["external_id", "email", "company"], [["r-1", "r1@example.com", "Acme"], ["r-2", "", "Beta"]])
    first = _post(as_marketer, text).json()
    again = _post(as_marketer, text).json()
    assert (first["created"], again["created"], again["updated"], again["unchanged"]) == (2, 0, 0, 2)


def test_a_large_file_becomes_a_job_with_status_and_a_rejects_csv(
    as_marketer, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_SYNC_MAX_BYTES = 100
    settings.CELERY_TASK_ALWAYS_EAGER = True
    rows = [[f"j-{i}", f"j{i}@example.com", "10"] for i in range(50)]
    rows[7][2] = "=HYPERLINK(1)"
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(as_marketer, _text(["external_id", "email", "employees"], rows))
    assert response.status_code == 202, response.content
    job = response.json()
    polled = as_marketer.get(job["url"]).json()
    assert (polled["status"], polled["created"], polled["rejected_count"]) == ("done", 49, 1)
    assert polled["rows_processed"] == 50
    rejects = as_marketer.get(polled["rejects_csv"])
    assert rejects.status_code == 200
    text = b"".join(rejects.streaming_content).decode("utf-8")
    assert text.startswith("\ufeffline,column,reason")
    assert "9,employees,'=HYPERLINK(1)' is not a whole number" in text  # quoted by the reason: inert
    assert not settings.IMPORT_DIR.joinpath(ImportJob.objects.get(pk=job["job"]).path).exists()  # upload removed


def test_json_rows_with_bad_values_are_rejected_per_row(as_marketer):
    body = as_marketer.post(
        URL,
        {"rows": [{"email": "j@example.com", "employees": "²"}, "nonsense", {"email": "k@example.com"}]},
        format="json",
    ).json()
    assert [(r["line"], r["column"]) for r in body["rejected"]] == [(2, "employees"), (3, "external_id")]
    assert body["created"] == 1


def test_reps_cannot_read_import_jobs(as_marketer, as_rep):
    job = _post(as_marketer, _text(["email"], [["q@example.com"]])).json()
    assert as_rep.get(job["url"]).status_code == 403
