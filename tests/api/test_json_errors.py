"""Every error under /api/ is JSON of one shape (issue 22 point 3), including the answers
Django gives before or after DRF: unknown URL, unhandled exception, oversized body."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from leads import api
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


def _assert_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"code", "detail", "fields"}
    assert isinstance(body["fields"], dict)
    if code:
        assert body["code"] == code
    return body


def test_400_names_the_field(as_marketer):
    body = _assert_shape(as_marketer.post("/api/v1/leads/", {"email": "not-an-email"}, format="json"), 400)
    assert "email" in body["fields"]


def test_401_without_credentials():
    _assert_shape(APIClient().get("/api/v1/leads/"), 401, "not_authenticated")


def test_403_for_a_role_that_may_not(as_rep):
    _assert_shape(as_rep.post("/api/v1/events/", [], format="json"), 403, "permission_denied")


def test_404_for_an_unknown_object_and_an_unknown_api_url(as_marketer):
    _assert_shape(as_marketer.get("/api/v1/leads/999999/"), 404, "not_found")
    _assert_shape(as_marketer.get("/api/v1/no-such-thing/"), 404, "not_found")
    _assert_shape(Client().get("/api/nothing-here"), 404, "not_found")


def test_405_keeps_the_allow_header(as_marketer):
    response = as_marketer.delete("/api/v1/leads/")
    _assert_shape(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_409_with_the_current_stage(as_rep, rep, team):
    from leads.models import Stage
    from tests.factories import LeadFactory

    lead = LeadFactory(stage=Stage.SAL, owner=rep, team=team)
    response = as_rep.post(f"/api/v1/leads/{lead.pk}/accept/", {}, format="json")
    assert _assert_shape(response, 409, "invalid_transition")["current_stage"] == "sal"


def test_413_for_a_body_over_the_limit(as_marketer):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        big = {"leads": [{"email": f"user{i}@example.com"} for i in range(200)]}
        body = _assert_shape(as_marketer.post("/api/v1/leads/bulk/", big, format="json"), 413, "too_large")
    assert "smaller batches" in body["detail"]


def test_a_csv_import_over_the_json_limit_is_still_accepted(as_marketer):
    header = "email,stage\n"
    rows = "".join(f"big{i}@example.com,lead\n" for i in range(100))
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        response = as_marketer.post("/api/v1/import/", header + rows, content_type="text/csv")
    assert response.status_code == 200, response.content[:300]


def test_415_for_a_wrong_content_type(as_marketer):
    response = as_marketer.post("/api/v1/events/", "a,b", content_type="text/csv")
    _assert_shape(response, 415, "unsupported_media_type")


def test_400_for_malformed_json(as_marketer):
    _assert_shape(as_marketer.post("/api/v1/leads/", "{", content_type="application/json"), 400, "parse_error")


def test_500_is_json_under_api_and_html_elsewhere(marketer, monkeypatch):
    def boom(self, request, *args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(api.LeadViewSet, "list", boom)
    client = client_for(marketer)
    client.raise_request_exception = False
    body = _assert_shape(client.get("/api/v1/leads/"), 500, "server_error")
    assert "unexpected" not in body["detail"]


def test_pages_outside_the_api_keep_html_errors(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
