"""Cache down (issue 22 point 8): with the Redis cache configured and Redis unreachable, the API
keeps answering (throttles and other cache users see misses) and the outage is logged."""

from __future__ import annotations

import logging

import pytest
from django.core.cache import cache
from django.test import override_settings

from leadflow import cache as resilient
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

# Nothing listens on port 1: every connection is refused, as with Redis stopped.
DEAD_REDIS = {
    "default": {
        "BACKEND": "leadflow.cache.ResilientRedisCache",
        "LOCATION": "redis://127.0.0.1:1/13",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


def test_the_api_answers_with_redis_down_and_logs_it(marketer, caplog, monkeypatch):
    monkeypatch.setattr(resilient.ResilientRedisCache, "_last_logged", 0.0)
    with override_settings(CACHES=DEAD_REDIS), caplog.at_level(logging.WARNING, logger="leadflow.cache"):
        client = client_for(marketer)
        for _ in range(3):
            response = client.get("/api/v1/leads/")
            assert response.status_code == 200, response.content[:300]
        created = client.post("/api/v1/leads/", {"email": "outage@example.com"}, format="json")
        assert created.status_code == 201
        assert cache.get("anything", "fallback") == "fallback"
        assert cache.add("k", 1) is False
    assert "Cache unavailable" in caplog.text


def test_a_redis_cache_url_gets_the_resilient_backend_with_short_timeouts(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, DEBUG="1", CACHE_URL="redis://127.0.0.1:6379/13", LEADFLOW_VAR_DIR=str(tmp_path))
    code = "from leadflow import settings as s; c = s.CACHES['default']; print(c['BACKEND'], c['OPTIONS'])"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("leadflow.cache.ResilientRedisCache")
    assert "'socket_timeout': 0.5" in result.stdout
