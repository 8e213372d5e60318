"""JSON endpoints of the reports (SPEC section 9) at /api/v1/reports/<name>/.

Session or token authentication; sales managers and marketing only. Every endpoint validates
`from`, `to`, `source`, `team`, `owner`, `country`, `group_by` (400 naming the field) and
returns its selector's dict with `as_of` (ISO time: every write committed before it is counted)
and `lag_seconds`, or as CSV with `?format=csv` (`X-Report-As-Of` header).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadflow.db_router import report_reads
from leads import permissions
from leads.models import Team

from . import selectors
from .export import ReportCSVRenderer

# Longer ranges are refused: nobody reads a decade at once, and they are the expensive queries.
MAX_RANGE_DAYS = 366 * 3


class ReportParams(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        # `from` is a Python keyword, so the fields are declared here instead of as attributes.
        return {
            "from": serializers.DateField(required=False),
            "to": serializers.DateField(required=False),
            "source": serializers.CharField(required=False, allow_blank=True, max_length=100),
            "team": serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), required=False, allow_null=True),
            "owner": serializers.SlugRelatedField(
                slug_field="username",
                queryset=get_user_model().objects.all(),
                required=False,
                allow_null=True,
            ),
            "country": serializers.RegexField(r"^[A-Za-z]{2}$", required=False, allow_blank=True),
            "group_by": serializers.ChoiceField(
                choices=sorted(selectors.GROUP_FIELDS), required=False, allow_null=True
            ),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "from" not in attrs or "to" not in attrs:
            default_from, default_to = selectors.default_range(date_to=attrs.get("to"))
            attrs.setdefault("from", default_from)
            attrs.setdefault("to", default_to)
        start: dt.date = attrs["from"]
        end: dt.date = attrs["to"]
        if end < start:
            raise serializers.ValidationError({"to": _("The end date must be on or after the start date.")})
        if (end - start).days >= MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"to": _("The range may cover at most %(days)s days.") % {"days": MAX_RANGE_DAYS}}
            )
        return attrs


PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (inclusive); default: 89 days before `to`."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (inclusive); default: today."),
    OpenApiParameter("source", OpenApiTypes.STR),
    OpenApiParameter("team", OpenApiTypes.INT, description="Team id."),
    OpenApiParameter("owner", OpenApiTypes.STR, description="Rep's username."),
    OpenApiParameter("country", OpenApiTypes.STR, description="ISO 3166-1 alpha-2."),
    OpenApiParameter("group_by", OpenApiTypes.STR, enum=sorted(selectors.GROUP_FIELDS)),
    OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
]


class ReportView(APIView):
    permission_classes = [permissions.RoleActionPermission]
    # SPEC section 1 gives reps their own figures; the API has never served those, so reps
    # are refused here as before.
    role_actions = {"get": permissions.MARKETING_AND_MANAGERS, "options": permissions.MARKETING_AND_MANAGERS}
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, ReportCSVRenderer]
    report: str = ""
    # OPTIONS metadata is not a report; answering 405 keeps every body renderable as CSV.
    metadata_class = None

    @extend_schema(parameters=PARAMETERS, responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        params = ReportParams(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        data = params.validated_data
        filters = selectors.ReportFilters(
            source=data.get("source") or "",
            team=data["team"].pk if data.get("team") else None,
            owner=data["owner"].username if data.get("owner") else "",
            country=(data.get("country") or "").upper(),
        )
        with report_reads():  # on the read replica, if there is one
            fresh = selectors.freshness(self.report)
            result = selectors.REPORTS[self.report](
                date_from=data["from"], date_to=data["to"], filters=filters, group_by=data.get("group_by")
            )
        # As of when: the read model's watermark time (taken before the report is read, so never
        # later than what the numbers include), and how far behind now that is.
        result["as_of"] = fresh["as_of"].isoformat()
        result["lag_seconds"] = fresh["lag_seconds"]
        return Response(result, headers={"X-Report-As-Of": result["as_of"]})


def report_view(name: str):
    # Three-argument type() is typed as returning a plain `type`.
    view = cast("type[ReportView]", type(f"{name.title()}ReportView", (ReportView,), {"report": name}))
    return view.as_view()
