"""Webhook hardening (issue 22 point 7): the signature covers a timestamp (no replays), and a
delivery resolves and checks the address when it is sent and connects to that address."""

from __future__ import annotations

import socket

import pytest
from django.test import override_settings

from leads import tasks
from leads.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from leads.url_guard import is_blocked
from leads.webhooks import sign, verify

SECRET = "s3cret-for-tests"


def test_the_signature_covers_time_and_body():
    header = sign(b'{"a":1}', SECRET, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert len(header.split("v1=")[1]) == 64
    assert verify(header, b'{"a":1}', SECRET, now=1_700_000_100)
    assert not verify(header, b'{"a":2}', SECRET, now=1_700_000_100), "body changed"
    assert not verify(header, b'{"a":1}', "other", now=1_700_000_100), "wrong secret"
    assert not verify(header, b'{"a":1}', SECRET, now=1_700_000_000 + 301), "replayed later"
    forged = header.replace("t=1700000000", "t=1700000400")
    assert not verify(forged, b'{"a":1}', SECRET, now=1_700_000_400), "timestamp moved"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_internal_addresses_are_blocked(address):
    assert is_blocked(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "100.128.0.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert not is_blocked(address)


def _fake_dns(monkeypatch, answer: str) -> None:
    def getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]

    monkeypatch.setattr("leads.url_guard.socket.getaddrinfo", getaddrinfo)


@pytest.fixture
def delivery(db):
    sub = WebhookSubscription.objects.create(url="http://hooks.example.com/in", events=["lead.sal"], secret=SECRET)
    return WebhookDelivery.objects.create(subscription=sub, event="lead.sal", payload={"event": "lead.sal"})


@override_settings(WEBHOOKS_ALLOW_PRIVATE=False)
def test_a_host_that_resolves_inward_at_send_time_is_not_contacted(monkeypatch, delivery):
    _fake_dns(monkeypatch, "100.64.3.4")  # public when subscribed, CGNAT now (DNS rebinding)
    connected = []
    monkeypatch.setattr(tasks.socket, "create_connection", lambda *a, **k: connected.append(a) or 1 / 0)

    assert tasks.deliver_webhook(str(delivery.pk)) == "retry"
    assert connected == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert "internal address" in delivery.last_error


@override_settings(WEBHOOKS_ALLOW_PRIVATE=False)
def test_the_delivery_connects_to_the_address_it_checked(monkeypatch, delivery):
    _fake_dns(monkeypatch, "93.184.216.34")
    connected = []

    def create_connection(address, timeout=None, *args, **kwargs):
        connected.append(address)
        raise OSError("test: no network")

    monkeypatch.setattr(tasks.socket, "create_connection", create_connection)
    assert tasks.deliver_webhook(str(delivery.pk)) == "retry"
    # (Eager Celery runs the retries at once; every attempt goes to the checked address.)
    assert connected and set(connected) == {("93.184.216.34", 80)}


def test_the_embedded_default_still_delivers_to_loopback(settings):
    assert settings.WEBHOOKS_ALLOW_PRIVATE is True
    assert is_blocked("127.0.0.1")  # blocked in production, allowed here by the setting
