"""Login throttling (issue 22 point 1): repeated wrong passwords lock the browser and admin
logins for a while, with a message saying so, and a manager can lift the lock."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _fail(client, url: str, username: str, times: int):
    response = None
    for _ in range(times):
        response = client.post(url, {"username": username, "password": "wrong-password"})
    return response


@override_settings(AXES_FAILURE_LIMIT=3)
def test_browser_login_locks_after_the_limit_even_with_the_right_password(client, rep):
    rep.set_password("right-password-123")
    rep.save()
    url = reverse("login")
    first = _fail(client, url, "rep1", 1)
    assert first.status_code == 200 and b"did not match" in first.content

    locked = _fail(client, url, "rep1", 2)
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert b"locked for 15 minutes" in locked.content

    # Locked: even the right password does not open a session.
    again = client.post(url, {"username": "rep1", "password": "right-password-123"})
    assert again.status_code == 429
    assert "_auth_user_id" not in client.session


@override_settings(AXES_FAILURE_LIMIT=3)
def test_admin_login_is_locked_too(client, manager):
    url = reverse("admin:login")
    locked = _fail(client, url, "manager", 3)
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content


@override_settings(AXES_FAILURE_LIMIT=3)
def test_unlock_by_command_lets_the_user_log_in_again(client, rep):
    rep.set_password("right-password-123")
    rep.save()
    url = reverse("login")
    _fail(client, url, "rep1", 3)
    assert AccessAttempt.objects.filter(username="rep1").exists()

    call_command("axes_reset_username", "rep1")

    response = client.post(url, {"username": "rep1", "password": "right-password-123"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(rep.pk)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_sales_manager_unlocks_a_rep_in_the_admin(client, rep, manager):
    rep.set_password("right-password-123")
    rep.save()
    _fail(client, reverse("login"), "rep1", 3)
    attempt = AccessAttempt.objects.get(username="rep1")

    admin_client = client.__class__()
    admin_client.force_login(manager)  # a sales manager, staff but not a superuser
    listing = admin_client.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and b"rep1" in listing.content
    deleted = admin_client.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})
    assert deleted.status_code == 302

    response = client.post(reverse("login"), {"username": "rep1", "password": "right-password-123"})
    assert response.status_code == 302


def test_test_client_login_still_works_without_a_request(client, rep):
    rep.set_password("right-password-123")
    rep.save()
    assert client.login(username="rep1", password="right-password-123")
