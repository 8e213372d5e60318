"""API tokens, hashed at rest, named and expiring (SPEC section 9; issue 22).

A key is shown once, when it is made; the database keeps its SHA-256, looked up by an index
(the key is 160 random bits, so no salt or slow hash is needed). `Authorization: Token <key>`
keeps the header DRF's own tokens used, so integrations change nothing but their key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiToken

KEY_PREFIX = "lf_"
# Recording every use would make each API call a write; once a minute is enough to see a token
# is still in use.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_token(*, user: Any, name: str, days: int | None = None) -> tuple[ApiToken, str]:
    """Make a token for `user`; returns it and the key, which is not stored and cannot be shown
    again. `days` defaults to API_TOKEN_DEFAULT_DAYS."""
    days = settings.API_TOKEN_DEFAULT_DAYS if days is None else days
    if days < 1:
        raise ValueError("A token must be valid for at least one day.")
    key = KEY_PREFIX + secrets.token_hex(20)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_hash=hash_key(key),
        prefix=key[: len(KEY_PREFIX) + 6],
        expires_at=timezone.now() + dt.timedelta(days=days),
    )
    return token, key


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` against hashed, expiring `ApiToken`s."""

    model = ApiToken

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        now = timezone.now()
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed(_("Token expired; ask for a new one."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token


# --- Throttles ----------------------------------------------------------------------------------


def request_weight(request: Request, view: Any) -> int:
    """How many units a request counts for: the records it carries on the bulk endpoints (a view
    says so through `throttle_weight`), one otherwise."""
    weigh = getattr(view, "throttle_weight", None)
    if weigh is None:
        return 1
    try:
        return max(1, int(weigh(request)))
    except Exception:  # noqa: BLE001 - an unparsable body is the view's 400 to give, not ours
        return 1


class WeightedRateThrottle(SimpleRateThrottle):
    """A sliding-window throttle where a request counts as its weight (records, for bulk)."""

    num_requests: int | None
    duration: int | None

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        assert self.num_requests is not None and self.duration is not None
        weight = request_weight(request, view)
        self.now = self.timer()
        self.history = [(at, n) for at, n in self.cache.get(self.key, []) if at > self.now - self.duration]
        if sum(n for _at, n in self.history) + weight > self.num_requests:
            return self.throttle_failure()
        self.history.insert(0, (self.now, weight))
        self.cache.set(self.key, self.history, self.duration)
        return True

    def wait(self) -> float | None:
        if self.history:
            assert self.duration is not None
            return max(0.0, self.duration - (self.now - self.history[-1][0]))
        return float(self.duration or 0)


class UserThrottle(WeightedRateThrottle):
    """All of a user's calls, whichever token or session they come with."""

    scope = "user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class TokenThrottle(WeightedRateThrottle):
    """One token's calls: a runaway integration is stopped before it uses up its user's rate."""

    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
