"""Login throttling: django-axes in front of Django's model backend.

Axes checks lock-outs for logins that come through an HTTP request (the browser login and the
admin). ``authenticate()`` without a request (the test client's ``login()``, shell scripts) has
no IP address or form to lock, so it goes straight to the model backend instead of raising.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lock-out check, skipped (not failed) when there is no request to identify."""

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
