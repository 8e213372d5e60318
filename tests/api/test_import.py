"""`POST /api/v1/import/`: the historical import over HTTP."""

from __future__ import annotations

import io

import pytest

from tests.leads.services.test_importer import _csv

pytestmark = pytest.mark.django_db


def test_api_import_accepts_csv_body_and_multipart_and_reps_are_refused(as_marketer, as_rep):
    text = _csv(
        [
            ["x-1", "x1@example.com", "Acme", "US", "5", "", "", "", "", "", "", "", ""],
            ["", "", "NoKey", "", "", "", "", "", "", "", "", "", ""],
        ]
    )
    response = as_marketer.generic("POST", "/api/v1/import/", text, content_type="text/csv")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] == 1
    assert body["rejected"] == [
        {"line": 3, "column": "external_id", "reason": "external_id, email or phone is required"}
    ]
    upload = io.BytesIO(text.encode())
    upload.name = "leads.csv"
    again = as_marketer.post("/api/v1/import/", {"file": upload}, format="multipart").json()
    assert again["created"] == 0 and again["unchanged"] == 1
    assert as_rep.generic("POST", "/api/v1/import/", text, content_type="text/csv").status_code == 403
