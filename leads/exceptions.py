"""One error shape for the whole API: ``{"code": ..., "detail": ..., "fields": {...}}``.

Integrations branch on `code`, so codes are stable; `detail` is for people. Domain errors from
`leads.lifecycle` carry their own code and details and are mapped here, so every endpoint that
calls a transition answers the same way without its own try/except.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from leads import lifecycle

# DRF exception class -> stable code (DRF's own default_code values are mostly fine, these are
# the ones the SPEC names differently).
DRF_CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "parse_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


class ApiError(exceptions.APIException):
    """An error with its own code and status, e.g. 413 `too_many_items`, 422 `idempotency_key_reused`."""

    def __init__(
        self,
        detail: str,
        *,
        code: str,
        status_code: int,
        fields: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.error_code = code
        self.fields = fields or {}
        self.extra = extra


def _flatten(detail: Any) -> Any:
    """DRF's ErrorDetail lists to plain strings, keeping the nesting (fields, list indexes)."""
    if isinstance(detail, dict):
        return {str(key): _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def error_body(code: str, detail: str, fields: dict[str, Any] | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {"code": code, "detail": detail, "fields": fields or {}}
    body.update(extra)
    return body


def transition_error_response(exc: lifecycle.TransitionError) -> Response:
    code = exc.code
    http_status = lifecycle.http_status(exc)
    details = dict(exc.details)
    field = details.pop("field", None)
    fields = {field: [exc.message]} if field else {}
    return Response(error_body(code, exc.message, fields, **details), status=http_status)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, lifecycle.TransitionError):
        return transition_error_response(exc)
    if isinstance(exc, ApiError):
        return Response(
            error_body(exc.error_code, str(exc.detail), exc.fields, **exc.extra),
            status=exc.status_code,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), None)
    if code is None:
        code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ValidationError):
        detail_data = _flatten(exc.detail)
        if isinstance(detail_data, dict):
            non_field = detail_data.pop("non_field_errors", None)
            fields = detail_data
            if non_field:
                fields["non_field_errors"] = non_field
            first = next(iter(fields.items()), None)
            detail = _("Invalid input: %(fields)s.") % {"fields": ", ".join(fields)} if first else _("Invalid input.")
        else:
            fields = {"non_field_errors": detail_data}
            detail = "; ".join(map(str, detail_data)) if isinstance(detail_data, list) else str(detail_data)
        response.data = error_body("validation_error", detail, fields)
    else:
        response.data = error_body(code, str(exc.detail) if hasattr(exc, "detail") else str(exc))
    return response
