"""Definition endpoints and the lead score explanation (SPEC sections 6 and 9).

Only marketing creates and edits drafts (PATCH, same validation as the admin); marketing and
sales managers sign their side, activate and preview; every role reads (each view's
`role_actions`, checked by leads.permissions; which side a signature counts for is
scoring.definitions'). The explanation follows lead visibility: a lead the caller may not see
is a 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leads import permissions
from leads.exceptions import ApiError

from . import definitions, services, suggest
from .models import DefinitionSignature, QualifiedLeadDefinition
from .preview import preview

DOMAIN_STATUS = {
    "signoff_missing": status.HTTP_409_CONFLICT,
    "not_a_draft": status.HTTP_409_CONFLICT,
    "permission_denied": status.HTTP_403_FORBIDDEN,
}


def _domain_error(exc: definitions.DefinitionError) -> ApiError:
    return ApiError(exc.message, code=exc.code, status_code=DOMAIN_STATUS.get(exc.code, 400))


def definition_json(definition: QualifiedLeadDefinition) -> dict[str, Any]:
    data = definitions.definition_to_dict(definition)
    data.update(
        id=definition.pk,
        version=definition.version,
        state=definition.state,
        review_by=definition.review_by.isoformat() if definition.review_by else None,
        notes=definition.notes,
        marketing_signed_by=getattr(definition.marketing_signed_by, "username", None),
        marketing_signed_at=definition.marketing_signed_at,
        sales_signed_by=getattr(definition.sales_signed_by, "username", None),
        sales_signed_at=definition.sales_signed_at,
        activated_at=definition.activated_at,
        created_at=definition.created_at,
        content_hash=definitions.content_hash(definition),
        signatures=[
            {
                "side": signature.side,
                "signer": getattr(signature.signer, "username", None),
                "content_hash": signature.content_hash,
                "signed_at": signature.signed_at,
                "voided_at": signature.voided_at,
                "voided_by": getattr(signature.voided_by, "username", None),
                "void_reason": signature.void_reason,
            }
            for signature in definition.signatures.all()
        ],
    )
    return data


def _parse_date(request: Request, name: str) -> dt.date | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationError({name: [_("'%(value)s' is not a date (YYYY-MM-DD).") % {"value": raw}]}) from None


@extend_schema_view(
    **{
        action: extend_schema(parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)])
        for action in ("retrieve", "partial_update", "sign", "activate", "preview")
    }
)
class DefinitionViewSet(viewsets.ViewSet):
    """Qualified-lead definitions as the JSON of SPEC section 9."""

    permission_classes = [permissions.RoleActionPermission]
    role_actions = {
        "list": permissions.EVERY_ROLE,
        "retrieve": permissions.EVERY_ROLE,
        "options": permissions.EVERY_ROLE,
        "create": frozenset({permissions.MARKETING}),
        # SPEC section 1: marketing edits drafts; managers read, preview and sign.
        "partial_update": frozenset({permissions.MARKETING}),
        "sign": permissions.MARKETING_AND_MANAGERS,
        "activate": permissions.MARKETING_AND_MANAGERS,
        "preview": permissions.MARKETING_AND_MANAGERS,
        "suggest": frozenset({permissions.MARKETING}),
    }
    # Non-numeric ids are a 404 from URL resolution, not a 500 from the lookup.
    lookup_value_regex = r"[0-9]+"

    def _queryset(self):
        return QualifiedLeadDefinition.objects.select_related(
            "marketing_signed_by", "sales_signed_by"
        ).prefetch_related(
            "fit_rules",
            "behavior_rules",
            "knockouts",
            Prefetch("signatures", queryset=DefinitionSignature.objects.select_related("signer", "voided_by")),
        )

    def _get(self, pk: int) -> QualifiedLeadDefinition:
        return get_object_or_404(self._queryset(), pk=pk)

    @extend_schema(operation_id="definitions_list", responses=OpenApiTypes.OBJECT)
    def list(self, request: Request) -> Response:
        paginator = self.paginator
        page = paginator.paginate_queryset(self._queryset().order_by("-version"), request, view=self)
        return paginator.get_paginated_response([definition_json(d) for d in page])

    @property
    def paginator(self):
        if not hasattr(self, "_paginator"):
            self._paginator = PageNumberPagination()
        return self._paginator

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT})
    def create(self, request: Request) -> Response:
        try:
            definition = definitions.create_definition(request.data, user=request.user)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        return Response(definition_json(self._get(definition.pk)), status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def retrieve(self, request: Request, pk: int) -> Response:
        return Response(definition_json(self._get(pk)))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def partial_update(self, request: Request, pk: int) -> Response:
        """Edit a draft: the fields given replace theirs, a rule list given replaces the list.
        Voids the draft's signatures when the signed content changes; an active or retired
        version is read-only (409)."""
        definition = self._get(pk)
        try:
            definitions.update_definition(definition, request.data, user=request.user)
        except definitions.DefinitionError as exc:
            raise _domain_error(exc) from None
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        return Response(definition_json(self._get(pk)))

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def sign(self, request: Request, pk: int) -> Response:
        definition = self._get(pk)
        try:
            definitions.sign_definition(definition, user=request.user)
        except definitions.DefinitionError as exc:
            raise _domain_error(exc) from None
        return Response(definition_json(self._get(pk)))

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: int) -> Response:
        definition = self._get(pk)
        try:
            services.activate_definition(definition, user=request.user)
        except definitions.DefinitionError as exc:
            raise _domain_error(exc) from None
        return Response(definition_json(self._get(pk)))

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="Window start (default: 90 days ago)"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Window end (default: today)"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: int) -> Response:
        definition = self._get(pk)
        date_from, date_to = _parse_date(request, "from"), _parse_date(request, "to")
        if date_from and date_to and date_from > date_to:
            raise ValidationError({"from": [_("'from' is after 'to'.")]})
        return Response(preview(definition, date_from=date_from, date_to=date_to))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"])
    def suggest(self, request: Request) -> Response:
        """A new draft whose fit rules are learnt from won and lost leads, with the held-out
        check (`validation`) and the fields skipped for lack of variation (`skipped`)."""
        options = _suggest_options(request.data)
        try:
            result = suggest.suggest_definition(user=request.user, **options)
        except suggest.SuggestError as exc:
            code = status.HTTP_503_SERVICE_UNAVAILABLE if exc.code == "suggest_unavailable" else 400
            raise ApiError(exc.message, code=exc.code, status_code=code, fields=exc.fields) from None
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        data = definition_json(self._get(result.definition.pk))
        data.update(validation=result.validation, skipped=result.skipped)
        return Response(data, status=status.HTTP_201_CREATED)


def _suggest_options(body: object) -> dict[str, Any]:
    """The suggest body's optional name, fields, period {from, to} and target_mql_rate."""
    if not isinstance(body, dict):
        raise ValidationError({"non_field_errors": [_("A JSON object.")]})
    options: dict[str, Any] = {}
    name = body.get("name")
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError({"name": [_("A non-empty text.")]})
        options["name"] = name.strip()[:200]
    fields = body.get("fields")
    if fields is not None:
        if not isinstance(fields, list) or not fields or not all(isinstance(f, str) and f for f in fields):
            raise ValidationError(
                {"fields": [_('A list of lead fields or attribute keys, e.g. ["country", "visits"].')]}
            )
        options["fields"] = fields
    period = body.get("period")
    if period is not None:
        if not isinstance(period, dict):
            raise ValidationError({"period": [_('An object, e.g. {"from": "2026-01-01", "to": "2026-06-30"}.')]})
        for key, option in (("from", "date_from"), ("to", "date_to")):
            raw = period.get(key)
            if raw is None:
                continue
            try:
                options[option] = dt.date.fromisoformat(str(raw))
            except ValueError:
                raise ValidationError(
                    {f"period.{key}": [_("'%(value)s' is not a date (YYYY-MM-DD).") % {"value": raw}]}
                ) from None
        if options.get("date_from") and options.get("date_to") and options["date_from"] > options["date_to"]:
            raise ValidationError({"period.from": [_("'from' is after 'to'.")]})
    rate = body.get("target_mql_rate")
    if rate is not None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1:
            raise ValidationError({"target_mql_rate": [_("A share of leads between 0 and 1, e.g. 0.2.")]})
        options["target_mql_rate"] = float(rate)
    return options


class LeadScoreView(APIView):
    """GET /api/v1/leads/{id}/score/: the explanation of the lead's scores."""

    permission_classes = [permissions.RoleActionPermission]
    role_actions = {"get": permissions.EVERY_ROLE, "options": permissions.EVERY_ROLE}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        lead = get_object_or_404(permissions.visible_leads(request.user), pk=pk)
        return Response(services.explain_lead(lead))
