"""The SSRF guard for webhook URLs: a webhook must not become a way into the internal network.

The address is checked twice: when a subscription is saved (a clear 400 for the manager) and at
every delivery, where the host is resolved once, every address checked, and the connection made
to a checked address (`resolve`), so a DNS answer that changes between the check and the
connection (DNS rebinding) cannot point a delivery inward.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Carrier-grade NAT (RFC 6598): neither private nor global in Python's tables, and internal.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")


def is_blocked(address: str) -> bool:
    """Private, loopback, link-local, shared (100.64.0.0/10), reserved, multicast, unspecified
    or any other non-global address; an IPv4 address inside IPv6 is judged as IPv4."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in SHARED_ADDRESS_SPACE)
        or not ip.is_global
    )


def _parts(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": _("Webhook URLs must be http:// or https:// with a host.")})
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValidationError({"url": _("The port is not valid.")}) from exc
    return parts.scheme, parts.hostname, port


def resolve(url: str) -> list[str] | None:
    """The addresses a delivery to `url` may connect to, all checked; None when the settings
    allow private networks (WEBHOOKS_ALLOW_PRIVATE, the embedded default, so a receiver on
    this machine can be tested): then the connection resolves the host itself."""
    _scheme, host, port = _parts(url)
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return None
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationError({"url": _("Cannot resolve host '%(host)s'.") % {"host": host}}) from exc
    # An AF_INET/AF_INET6 sockaddr starts with the address as a string; typeshed's union also
    # holds the (int, bytes) form of a Python built without IPv6, which a TCP lookup never yields.
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses or any(is_blocked(address) for address in addresses):
        raise ValidationError(
            {"url": _("This URL resolves to a private, loopback or other internal address, which is not allowed.")}
        )
    return addresses


def check_url(url: str) -> None:
    """Refuse non-HTTP URLs, and under production settings URLs resolving to internal networks
    (a webhook must not become a way to reach the internal network)."""
    resolve(url)
