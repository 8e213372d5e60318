"""REST API for people (issue 21): possible duplicates, merge, privacy export and erasure, and
e-mail consent. Marketing and sales managers only (SPEC section 1); everyone else is refused.
Parses, authorises and serialises; `leads.services.merge` / `.privacy` do the writing."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import permissions
from .api import COMMON_ERRORS, actor_for, service_error
from .exceptions import ApiError
from .models import Lead
from .serializers import lead_body
from .services.duplicates import find_duplicates, suggested_survivor
from .services.errors import ServiceError
from .services.merge import merge_leads
from .services.privacy import erase_person, export_person, set_email_opt_out

PEOPLE_ROLES = permissions.MARKETING_AND_MANAGERS


class _PeopleView(APIView):
    permission_classes = [permissions.RoleActionPermission]
    role_actions = {"get": PEOPLE_ROLES, "post": PEOPLE_ROLES, "options": permissions.EVERY_ROLE}

    def lead(self, pk: Any) -> Lead:
        return get_object_or_404(permissions.visible_leads(self.request.user), pk=pk)


class MergeSerializer(serializers.Serializer):
    duplicate = serializers.IntegerField(min_value=1, help_text="Id of the lead merged into this one.")


class MergeView(_PeopleView):
    http_method_names = ["post", "options"]

    @extend_schema(
        request=MergeSerializer,
        responses={
            200: inline_serializer("MergeResult", {"lead": serializers.DictField(), "merge": serializers.DictField()}),
            **COMMON_ERRORS,
        },
        description="Merge the lead `duplicate` into this one (the survivor, which keeps its stage). "
        "Afterwards `GET /api/v1/leads/{duplicate}/` answers 301 to the survivor.",
    )
    def post(self, request: Request, pk: int) -> Response:
        survivor = self.lead(pk)
        body = MergeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        loser = permissions.visible_leads(request.user).filter(pk=body.validated_data["duplicate"]).first()
        if loser is None:
            raise ApiError(
                f"No lead with id {body.validated_data['duplicate']}.",
                code="validation_error",
                status_code=400,
                fields={"duplicate": ["Unknown lead."]},
            )
        try:
            details = merge_leads(survivor, loser, by=actor_for(request))
        except ServiceError as exc:
            error = service_error(exc)
            if exc.code == "already_merged":
                error.status_code = status.HTTP_409_CONFLICT
            raise error from exc
        survivor.refresh_from_db()
        return Response({"lead": lead_body(survivor), "merge": details})


class DuplicatesView(_PeopleView):
    http_method_names = ["get", "options"]

    @extend_schema(
        responses={
            200: inline_serializer("DuplicatePairs", {"pairs": serializers.ListField(child=serializers.DictField())}),
            **COMMON_ERRORS,
        }
    )
    def get(self, request: Request) -> Response:
        pairs = []
        for candidate in find_duplicates(limit=200):
            survivor, duplicate = suggested_survivor(candidate)
            pairs.append(
                {
                    "leads": [candidate.first.pk, candidate.second.pk],
                    "reasons": candidate.reasons,
                    "score": round(candidate.score, 1),
                    "suggested_survivor": survivor.pk,
                    "suggested_duplicate": duplicate.pk,
                }
            )
        return Response({"pairs": pairs})


class PrivacyExportView(_PeopleView):
    http_method_names = ["get", "options"]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **COMMON_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(export_person(self.lead(pk), by=actor_for(request)))


class EraseView(_PeopleView):
    http_method_names = ["post", "options"]

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, **COMMON_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        return Response(erase_person(self.lead(pk), by=actor_for(request)))


class ConsentSerializer(serializers.Serializer):
    email_opt_out = serializers.BooleanField()


class ConsentStateSerializer(serializers.Serializer):
    lead = serializers.IntegerField()
    email_opt_out = serializers.BooleanField()
    email_opt_out_at = serializers.DateTimeField(allow_null=True)
    email_opt_out_source = serializers.CharField()
    may_email = serializers.BooleanField()


class ConsentView(_PeopleView):
    http_method_names = ["get", "post", "options"]

    def _body(self, lead: Lead) -> dict[str, Any]:
        return {
            "lead": lead.pk,
            "email_opt_out": lead.email_opt_out,
            "email_opt_out_at": lead.email_opt_out_at,
            "email_opt_out_source": lead.email_opt_out_source,
            "may_email": lead.may_email(),
        }

    @extend_schema(responses={200: ConsentStateSerializer, **COMMON_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(self._body(self.lead(pk)))

    @extend_schema(request=ConsentSerializer, responses={200: ConsentStateSerializer, **COMMON_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        lead = self.lead(pk)
        body = ConsentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            lead = set_email_opt_out(
                lead, opt_out=body.validated_data["email_opt_out"], by=actor_for(request), source="api"
            )
        except ServiceError as exc:
            raise service_error(exc) from exc
        return Response(self._body(lead))
