"""API tokens (issue 22 point 2): hashed at rest, expiring, named, listed and revoked by their
owner; `manage.py create_token`; throttles per token and per user, bulk counted per record."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from leads.models import ApiToken
from leads.tokens import issue_token

pytestmark = pytest.mark.django_db


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_create_token_prints_the_key_alone_on_the_last_line_and_stores_only_its_hash(marketer):
    out = io.StringIO()
    call_command("create_token", "marketer", "--name", "hubspot", "--days", "30", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    token = ApiToken.objects.get(user=marketer)
    assert token.name == "hubspot"
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {token.key_hash, token.prefix}
    assert dt.timedelta(days=29) < token.expires_at - timezone.now() <= dt.timedelta(days=30)
    assert _client(key).get("/api/v1/leads/").status_code == 200


def test_create_token_for_an_unknown_user_fails():
    with pytest.raises(CommandError, match="No user named"):
        call_command("create_token", "nobody")


def test_an_expired_token_is_refused_with_a_json_401(marketer):
    token, key = issue_token(user=marketer, name="old", days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = _client(key).get("/api/v1/leads/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert "expired" in response.json()["detail"]


def test_a_wrong_key_is_refused(marketer):
    issue_token(user=marketer, name="real")
    response = _client("lf_" + "0" * 40).get("/api/v1/leads/")
    assert response.status_code == 401


def test_owner_lists_creates_and_revokes_tokens_and_sees_nobody_elses(marketer, rep):
    _own, key = issue_token(user=marketer, name="first")
    other, _ = issue_token(user=rep, name="rep's")
    client = _client(key)

    created = client.post("/api/v1/tokens/", {"name": "zapier", "days": 7}, format="json")
    assert created.status_code == 201
    new_key = created.json()["key"]
    assert _client(new_key).get("/api/v1/leads/").status_code == 200

    listed = client.get("/api/v1/tokens/").json()["results"]
    assert {t["name"] for t in listed} == {"first", "zapier"}
    assert all("key" not in t for t in listed)

    assert client.delete(f"/api/v1/tokens/{other.pk}/").status_code == 404
    assert ApiToken.objects.filter(pk=other.pk).exists()

    zapier = next(t for t in listed if t["name"] == "zapier")
    assert client.delete(f"/api/v1/tokens/{zapier['id']}/").status_code == 204
    assert _client(new_key).get("/api/v1/leads/").status_code == 401


@pytest.fixture
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.usefixtures("_fresh_throttles")
def test_a_token_over_its_rate_gets_429_but_the_users_other_token_does_not(marketer):
    _a, key_a = issue_token(user=marketer, name="a")
    _b, key_b = issue_token(user=marketer, name="b")
    rates = {"token": "3/min", "user": "100/min"}
    with override_settings(REST_FRAMEWORK={**_rest(), "DEFAULT_THROTTLE_RATES": rates}):
        _reload_throttles()
        for _ in range(3):
            assert _client(key_a).get("/api/v1/leads/").status_code == 200
        throttled = _client(key_a).get("/api/v1/leads/")
        assert throttled.status_code == 429
        assert throttled.json()["code"] == "throttled"
        assert "Retry-After" in throttled
        assert _client(key_b).get("/api/v1/leads/").status_code == 200
    _reload_throttles()


@pytest.mark.usefixtures("_fresh_throttles")
def test_bulk_requests_count_each_record(marketer):
    _t, key = issue_token(user=marketer, name="bulk")
    rates = {"token": "10/min", "user": "100/min"}
    leads = [{"email": f"b{i}@example.com"} for i in range(8)]
    with override_settings(REST_FRAMEWORK={**_rest(), "DEFAULT_THROTTLE_RATES": rates}):
        _reload_throttles()
        assert _client(key).post("/api/v1/leads/bulk/", {"leads": leads}, format="json").status_code == 200
        # 8 of 10 used: three more records are over the rate, two are not.
        over = _client(key).post("/api/v1/events/", [_event(i) for i in range(3)], format="json")
        assert over.status_code == 429
        ok = _client(key).post("/api/v1/events/", [_event(i) for i in range(2)], format="json")
        assert ok.status_code == 201
    _reload_throttles()


def _event(i: int) -> dict:
    return {"lead": {"email": f"b{i}@example.com"}, "type": "page_view", "event_id": f"e-{i}"}


def _rest() -> dict:
    from django.conf import settings

    return dict(settings.REST_FRAMEWORK)


def _reload_throttles() -> None:
    """DRF reads THROTTLE_RATES into a class attribute when the throttle module loads."""
    from rest_framework.settings import api_settings

    from leads import tokens

    api_settings.reload()
    for cls in (tokens.TokenThrottle, tokens.UserThrottle):
        cls.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
