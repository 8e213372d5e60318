"""The language picker and the user's locale at login (issue 24).

The picker posts to Django's `set_language` (which sets the language cookie and redirects to
`next`); for a signed-in user the choice is also saved on their profile, so their other devices
and their e-mails follow it. At login the user's locale is read once into the session, where
`leads.middleware.UserLanguageMiddleware` finds it on every request.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from . import i18n


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    response = django_set_language(request)
    if request.user.is_authenticated and response.status_code in (200, 302):
        i18n.save_language(request.user, request.POST.get("language", ""))
        i18n.remember(request.session, request.user)
    return response


@receiver(user_logged_in)
def remember_locale_at_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        i18n.remember(request.session, user)
