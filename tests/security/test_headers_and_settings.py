"""Headers and production settings (issue 22 point 4): a Content-Security-Policy on every page,
no inline scripts, swagger-ui from our own static files, DEBUG off unless asked for, and no
start with a weak SECRET_KEY."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


def _csp(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/", "/api/v1/docs/", "/api/v1/leads/"])
def test_every_page_has_a_csp_that_allows_only_our_own_scripts(client, url):
    response = client.get(url)
    policy = _csp(response)
    assert policy["script-src"] == "script-src 'self'"
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["object-src"] == "object-src 'none'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"


@pytest.mark.django_db
def test_pages_of_a_signed_in_user_have_the_csp(client, manager):
    client.force_login(manager)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_swagger_ui_comes_from_our_static_files_without_inline_script(client):
    html = client.get("/api/v1/docs/").content.decode()
    sources = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert sources, html[:500]
    assert all(src.startswith("/") and "//" not in src for src in sources), sources
    assert any("drf_spectacular_sidecar/swagger-ui-dist" in src for src in sources)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html), "inline script on the docs page"
    assert "cdn" not in html.lower()


def test_no_template_has_an_inline_script_or_event_handler():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and "application/json" not in tag:
                offenders.append(f"{path}: {tag}")
        if re.search(r"\son[a-z]+\s*=\s*[\"']", text):
            offenders.append(f"{path}: inline event handler")
    assert offenders == []


def _settings_in_subprocess(tmp_path, **env_vars: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL")}
    env.update(LEADFLOW_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="leadflow.settings", **env_vars)
    code = "import django; from django.conf import settings; django.setup(); print('DEBUG', settings.DEBUG)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_debug_is_off_when_nothing_sets_it(tmp_path):
    result = _settings_in_subprocess(tmp_path, SECRET_KEY=secrets.token_urlsafe(60))
    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout


@pytest.mark.parametrize(
    "key", ["x", "change-me-to-a-long-random-string", "django-insecure-" + "a1b2c3" * 10, "a" * 60]
)
def test_production_refuses_a_short_or_known_secret_key(tmp_path, key):
    result = _settings_in_subprocess(tmp_path, SECRET_KEY=key)
    assert result.returncode != 0
    assert "SECRET_KEY must be set to 50 or more random characters" in result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _settings_in_subprocess(tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DATABASE_URL")}
    env.update(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(60), ALLOWED_HOSTS="x", LEADFLOW_VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
