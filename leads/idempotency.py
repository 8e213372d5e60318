"""`Idempotency-Key` on POSTs: the same key and body give the stored response again (for at
least 24 hours); the same key with a different body is a 422.

The key row is inserted before the work runs, inside the same transaction, so two concurrent
requests with one key serialise on the unique constraint instead of both doing the work.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from .exceptions import ApiError
from .models import IdempotencyKey

HEADER = "Idempotency-Key"
KEEP_FOR = dt.timedelta(hours=24)


def _body_hash(request: Request) -> str:
    raw = request._request.body
    assert request.method is not None  # Django sets the method of every request it dispatches
    return hashlib.sha256(request.method.encode() + request.path.encode() + b"\0" + raw).hexdigest()


def _replay(row: IdempotencyKey, body_hash: str) -> Response:
    if row.body_hash != body_hash:
        raise ApiError(
            _("This Idempotency-Key was used with a different request body."),
            code="idempotency_key_reused",
            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
            fields={"Idempotency-Key": [_("Already used with a different body.")]},
        )
    if row.status_code is None:
        raise ApiError(
            _("A request with this Idempotency-Key is still being processed."),
            code="idempotency_key_in_use",
            status_code=status.HTTP_409_CONFLICT,
        )
    response = Response(row.response, status=row.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate a POST handler (`def post(self, request, ...)` or a viewset action)."""

    @functools.wraps(view)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if not key:
            return view(self, request, *args, **kwargs)
        if len(key) > 255:
            raise ApiError(
                _("Idempotency-Key is at most 255 characters."),
                code="validation_error",
                status_code=400,
                fields={"Idempotency-Key": [_("Too long.")]},
            )
        body_hash = _body_hash(request)
        user, method = request.user, request.method
        # Idempotent views sit behind RoleActionPermission, which refuses anonymous callers before
        # the handler runs; Django sets the method of every request it dispatches.
        assert user.is_authenticated and method is not None
        since = timezone.now() - KEEP_FOR
        existing = IdempotencyKey.objects.filter(user=user, key=key, created_at__gte=since).first()
        if existing is not None:
            return _replay(existing, body_hash)
        # An expired key may be reused.
        IdempotencyKey.objects.filter(user=user, key=key, created_at__lt=since).delete()
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    user=user,
                    key=key,
                    method=method,
                    path=request.path,
                    body_hash=body_hash,
                )
        except IntegrityError:
            return _replay(IdempotencyKey.objects.get(user=user, key=key), body_hash)
        try:
            response = view(self, request, *args, **kwargs)
        except Exception:
            IdempotencyKey.objects.filter(pk=row.pk).delete()
            raise
        if response.status_code >= 500:
            IdempotencyKey.objects.filter(pk=row.pk).delete()
            return response
        data = json.loads(json.dumps(response.data, default=str))
        IdempotencyKey.objects.filter(pk=row.pk).update(status_code=response.status_code, response=data)
        return response

    return wrapper


def purge_expired(*, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    deleted, _count = IdempotencyKey.objects.filter(created_at__lt=now - KEEP_FOR * 2).delete()
    return deleted
