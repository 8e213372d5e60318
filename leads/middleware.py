"""JSON errors for everything under /api/, including what Django answers before or after DRF.

DRF's exception handler (`leads.exceptions`) shapes the errors of API views. Some answers never
reach it: an unknown /api/ URL (Django's 404), an unhandled exception (Django's 500 page), a
body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django's 400 page for a "suspicious operation"). An
integration parses every answer as JSON, so this middleware gives those the same
`{"code", "detail", "fields"}` shape, and refuses an oversized body with 413 before parsing it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from rest_framework.response import Response

from . import i18n
from .exceptions import error_body

API_PREFIX = "/api/"

# Status -> (code, detail) for answers no view shaped.
STATUS_ERRORS = {
    400: ("bad_request", _("The request could not be read.")),
    401: ("not_authenticated", _("Authentication credentials were not provided.")),
    403: ("permission_denied", _("You do not have permission to perform this action.")),
    404: ("not_found", _("No API endpoint or object at this URL.")),
    405: ("method_not_allowed", _("Method not allowed at this URL.")),
    413: ("too_large", _("Request body too large; send smaller batches.")),
    415: ("unsupported_media_type", _("Unsupported media type; send application/json.")),
    429: ("throttled", _("Too many requests; slow down.")),
    500: ("server_error", _("Internal error; it has been logged.")),
}


def _json_error(status: int, code: str | None = None, detail: str | None = None) -> JsonResponse:
    default_code, default_detail = STATUS_ERRORS.get(status, ("error", _("Request failed.")))
    return JsonResponse(error_body(code or default_code, str(detail or default_detail)), status=status)


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip().endswith("json")


# Bodies decoded whole in memory. Not multipart uploads (Django streams their files to disk and
# counts only the form fields) nor a text/csv historical import, which is a file by nature.
LIMITED_TYPES = ("application/json", "application/x-www-form-urlencoded")


def _too_large(request: HttpRequest) -> bool:
    """A declared JSON or form body over DATA_UPLOAD_MAX_MEMORY_SIZE."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    content_type = request.content_type or ""
    if limit is None or not (content_type in LIMITED_TYPES or content_type.endswith("+json")):
        return False
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > limit
    except ValueError:
        return False


class ApiJsonErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        if _too_large(request):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return _json_error(
                413, detail=_("Request body over %(limit)s bytes; send smaller batches.") % {"limit": limit}
            )
        response = self.get_response(request)
        # A DRF answer was shaped by the API's exception handler already (a CSV report's error
        # may be CSV, as its caller asked): only Django's own pages are replaced.
        if response.status_code >= 400 and not isinstance(response, Response) and not _is_json(response):
            shaped = _json_error(response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    shaped[header] = response[header]
            return shaped
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return _json_error(413)
        # Anything else goes on to Django's handling (logged as an internal error, mailed to the
        # admins); its HTML answer is then replaced in __call__.
        return None


class UserLanguageMiddleware:
    """A signed-in user's pages in their preferred language and time zone (issue 24).

    Runs after LocaleMiddleware (cookie, then Accept-Language) and AuthenticationMiddleware. The
    user's profile, else their team's default, wins over the browser for pages, so the language
    follows the person from one device to the next; the picker saves the profile. Under /api/ the
    client's Accept-Language decides, as an integration expects, and only the time zone applies.
    The locale is read at login and kept in the session (no query per request); the picker
    refreshes it, and it is read again every few minutes (leads.i18n.SESSION_MAX_AGE).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not hasattr(request, "session"):
            return self.get_response(request)
        locale = i18n.session_locale(request.session, user)
        if locale.chosen and not request.path.startswith(API_PREFIX):
            translation.activate(locale.language)
            request.LANGUAGE_CODE = translation.get_language()
        with timezone.override(i18n.zone(locale.time_zone)):
            return self.get_response(request)
