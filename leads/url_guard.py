"""The SSRF guard for webhook URLs: a webhook must not become a way into the internal network."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified


def check_url(url: str) -> None:
    """Refuse non-HTTP URLs, and under production settings URLs resolving to private networks
    (a webhook must not become a way to reach the internal network)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": "Webhook URLs must be http:// or https:// with a host."})
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationError({"url": f"Cannot resolve host '{parts.hostname}'."}) from exc
    # An AF_INET/AF_INET6 sockaddr starts with the address as a string; typeshed's union also
    # holds the (int, bytes) form of a Python built without IPv6, which a TCP lookup never yields.
    if any(_is_private(str(info[4][0])) for info in infos):
        raise ValidationError({"url": "This URL resolves to a private or loopback address, which is not allowed."})
