"""REST API v1 (SPEC section 6): leads, bulk upsert, events, transitions, touches, history,
webhooks, historical import and CSV export. Parses, authorises and serialises; the writing is
leads.services' and leads.lifecycle's.

Access follows leads.permissions: each view lists the roles allowed each action (anything
unlisted is refused); then a lead the caller may not see is a 404, and a move on a lead out of
a rep's reach is a 403 from the lifecycle. Writes to leads and events are marketing's
and managers' (a rep's token can do what the rep can do in the browser, no more).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authentication import TokenAuthentication
from rest_framework.decorators import action
from rest_framework.parsers import FileUploadParser, FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sla.models import SlaBreach

from . import lifecycle, permissions
from .exceptions import ApiError
from .filters import LeadFilter
from .idempotency import idempotent
from .models import Lead, Stage, StageTransition, WebhookSubscription
from .serializers import (
    BulkLeadsSerializer,
    BulkResultSerializer,
    CloseSerializer,
    DisqualifySerializer,
    EventInSerializer,
    EventSerializer,
    EventsResultSerializer,
    HistorySerializer,
    ImportResultSerializer,
    LeadSerializer,
    NoteSerializer,
    QualifySerializer,
    RecycleSerializer,
    RejectSerializer,
    SlaBreachSerializer,
    TouchSerializer,
    TransitionSerializer,
    WebhookCreatedSerializer,
    WebhookSubscriptionSerializer,
    lead_body,
)
from .services import export
from .services.errors import ServiceError
from .services.importer import import_leads
from .services.ingest import ingest_events
from .services.merge import merged_lead_ids
from .services.upsert import bulk_upsert, create_lead, update_lead

MAX_BATCH = 1000
HISTORY_EVENTS = 500

ERROR = inline_serializer(
    "Error",
    {
        "code": serializers.CharField(),
        "detail": serializers.CharField(),
        "fields": serializers.DictField(),
    },
)
COMMON_ERRORS = {
    400: OpenApiResponse(ERROR, description="validation_error / invalid_reason / bant_required"),
    401: OpenApiResponse(ERROR, description="not_authenticated"),
    403: OpenApiResponse(ERROR, description="permission_denied"),
    404: OpenApiResponse(ERROR, description="not_found"),
}
TRANSITION_ERRORS = {
    **COMMON_ERRORS,
    409: OpenApiResponse(
        ERROR, description="invalid_transition (with current_stage, allowed_moves) or touches_required"
    ),
}

# ServiceError code -> HTTP status.
SERVICE_STATUS = {"validation_error": status.HTTP_400_BAD_REQUEST}


def service_error(exc: ServiceError) -> ApiError:
    """A service's refusal as the API's error body, with the service's code and fields."""
    return ApiError(
        exc.message,
        code=exc.code,
        status_code=SERVICE_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST),
        fields=exc.fields,
    )


def actor_for(request: Request) -> lifecycle.Actor:
    if isinstance(request.successful_authenticator, TokenAuthentication):
        return lifecycle.Actor.api(request.user)
    return lifecycle.Actor.person(request.user)


# --- Leads ---------------------------------------------------------------------------------


@extend_schema(responses={200: LeadSerializer, **COMMON_ERRORS})
class LeadViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = LeadSerializer
    filterset_class = LeadFilter
    permission_classes = [permissions.RoleActionPermission]
    role_actions = {
        "list": permissions.EVERY_ROLE,
        "retrieve": permissions.EVERY_ROLE,
        "history": permissions.EVERY_ROLE,
        # SPEC section 1 lists export with the writes (reps: no); reps have always been able to
        # export the leads they may read, and #17 changes no behaviour. To be decided.
        "export_csv": permissions.EVERY_ROLE,
        "options": permissions.EVERY_ROLE,
        "create": permissions.MARKETING_AND_MANAGERS,
        "partial_update": permissions.MARKETING_AND_MANAGERS,
        "bulk": permissions.MARKETING_AND_MANAGERS,
        **{
            move: permissions.roles_for_move(move)
            for move in ("accept", "reject", "qualify", "recycle", "disqualify", "close")
        },
        "touches": permissions.roles_for_move("log_touch"),
    }
    http_method_names = ["get", "post", "patch", "head", "options"]
    # A non-numeric id is a 404 from the router, never a ValueError in the lookup.
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        qs = Lead.objects.select_related("owner", "team").order_by("-created_at", "-id")
        return permissions.visible_leads(self.request.user, qs)

    def get_lead(self) -> Lead:
        return get_object_or_404(permissions.visible_leads(self.request.user), pk=self.kwargs["pk"])

    @extend_schema(responses={200: LeadSerializer, 301: OpenApiResponse(ERROR, description="merged"), **COMMON_ERRORS})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A lead merged into another answers 301 with the survivor's id (`merged_into`) and URL
        (`Location`), so an integration holding the old id finds the person (issue 21)."""
        lead = self.get_object()
        if lead.merged_into_id is not None:
            target = reverse("api-lead-detail", kwargs={"pk": lead.merged_into_id})
            return Response(
                {
                    "code": "merged",
                    "detail": f"Lead {lead.pk} was merged into lead {lead.merged_into_id}.",
                    "merged_into": lead.merged_into_id,
                    "fields": {},
                },
                status=status.HTTP_301_MOVED_PERMANENTLY,
                headers={"Location": request.build_absolute_uri(target)},
            )
        return Response(self.get_serializer(lead).data)

    @extend_schema(responses={201: LeadSerializer, **COMMON_ERRORS})
    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            lead = create_lead(values=serializer.validated_data)
        except ServiceError as exc:
            raise service_error(exc) from exc
        return Response(self.get_serializer(lead).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: serializers.BaseSerializer[Lead]) -> None:
        # The response is the serializer's representation of the lead as the service left it.
        assert serializer.instance is not None  # update() built the serializer on get_object()
        serializer.instance = update_lead(serializer.instance, changes=serializer.validated_data)

    def throttle_weight(self, request: Request) -> int:
        """The bulk upsert counts each lead against the throttle rates (README, API limits)."""
        if self.action != "bulk":
            return 1
        rows = request.data.get("leads") if isinstance(request.data, dict) else request.data
        return len(rows) if isinstance(rows, list) else 1

    @extend_schema(
        request=BulkLeadsSerializer,
        responses={200: BulkResultSerializer, **COMMON_ERRORS, 413: OpenApiResponse(ERROR)},
    )
    @action(detail=False, methods=["post"], url_path="bulk")
    @idempotent
    def bulk(self, request: Request) -> Response:
        rows = request.data.get("leads") if isinstance(request.data, dict) else request.data
        if not isinstance(rows, list):
            raise ApiError(
                'Send {"leads": [...]} (or a JSON list) of up to 1,000 leads.',
                code="validation_error",
                status_code=400,
                fields={"leads": ["Expected a list."]},
            )
        if len(rows) > MAX_BATCH:
            raise ApiError(
                f"At most {MAX_BATCH} leads per request; got {len(rows)}.",
                code="too_many_items",
                status_code=413,
                fields={"leads": [f"At most {MAX_BATCH} items."]},
            )
        return Response(bulk_upsert(rows))

    @extend_schema(
        parameters=[],
        responses={(200, "text/csv"): OpenApiTypes.STR, **COMMON_ERRORS},
        description="The list's filters apply; the columns are those of the historical import.",
    )
    @action(detail=False, methods=["get"], url_path="export")
    def export_csv(self, request: Request) -> StreamingHttpResponse:
        queryset = self.filter_queryset(self.get_queryset())
        response = StreamingHttpResponse(export.rows(queryset), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="leads.csv"'
        return response

    # --- Transitions ---

    def _lead_for_claim(self, move: str) -> Lead:
        """The lead to accept or reject. A rep sees an unassigned MQL of their team only while it
        is one: once a teammate's accept or reject wins, the lead drops out of the loser's view.
        The loser must learn it lost (409 with the stage it is in now), not that the lead is gone
        (404); the rule, without leaking other leads: the lead is their team's and no longer an
        MQL (an MQL assigned to a teammate is still not theirs to see: 404)."""
        try:
            return self.get_lead()
        except Http404:
            user = self.request.user
            if not permissions.is_rep(user):
                raise
            lead = Lead.objects.filter(pk=self.kwargs["pk"], team_id__in=permissions.rep_team_ids(user)).first()
            if lead is None or lead.stage == Stage.MQL:
                raise
            raise lifecycle.InvalidTransition(lead=lead, move=move, current_stage=lead.stage) from None

    def _move(self, request: Request, serializer_class: type, call: Callable[..., Any]) -> Response:
        if call is lifecycle.accept or call is lifecycle.reject:
            lead = self._lead_for_claim("accept" if call is lifecycle.accept else "reject")
        else:
            lead = self.get_lead()
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        transition = call(lead, actor=actor_for(request), **serializer.validated_data)
        # The row as the move locked and wrote it, owner and team included: no re-read.
        return Response(lead_body(transition.lead))

    @extend_schema(request=NoteSerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        return self._move(request, NoteSerializer, lifecycle.accept)

    @extend_schema(request=RejectSerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        return self._move(request, RejectSerializer, lifecycle.reject)

    @extend_schema(request=QualifySerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def qualify(self, request: Request, pk: str) -> Response:
        return self._move(request, QualifySerializer, lifecycle.qualify)

    @extend_schema(request=RecycleSerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def recycle(self, request: Request, pk: str) -> Response:
        return self._move(request, RecycleSerializer, lifecycle.recycle)

    @extend_schema(request=DisqualifySerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def disqualify(self, request: Request, pk: str) -> Response:
        return self._move(request, DisqualifySerializer, lifecycle.disqualify)

    @extend_schema(request=CloseSerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        return self._move(request, CloseSerializer, lifecycle.close)

    @extend_schema(request=TouchSerializer, responses={201: TouchSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def touches(self, request: Request, pk: str) -> Response:
        lead = self.get_lead()
        serializer = TouchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        touch = lifecycle.log_touch(lead, actor=actor_for(request), **serializer.validated_data)
        return Response(TouchSerializer(touch).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: HistorySerializer, **COMMON_ERRORS})
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        lead = self.get_lead()
        # A merged duplicate's stage history stays on its own row (append-only, counted by the
        # reports); the survivor's history shows it too (issue 21).
        ids = merged_lead_ids(lead)
        return Response(
            {
                "transitions": TransitionSerializer(
                    StageTransition.objects.filter(lead_id__in=ids)
                    .select_related("actor", "owner")
                    .order_by("at", "id"),
                    many=True,
                ).data,
                "touches": TouchSerializer(lead.touches.select_related("user").order_by("at", "id"), many=True).data,
                "events": EventSerializer(lead.events.order_by("-occurred_at", "-id")[:HISTORY_EVENTS], many=True).data,
                "sla_breaches": SlaBreachSerializer(
                    SlaBreach.objects.filter(lead_id__in=ids).order_by("detected_at", "id"), many=True
                ).data,
            }
        )


# --- Events --------------------------------------------------------------------------------


class EventsView(APIView):
    """Behaviour events, one or up to 1,000 per request."""

    permission_classes = [permissions.RoleActionPermission]
    role_actions = {"post": permissions.MARKETING_AND_MANAGERS, "options": permissions.EVERY_ROLE}
    parser_classes = [JSONParser]

    def throttle_weight(self, request: Request) -> int:
        """Each event of a batch counts against the throttle rates (README, API limits)."""
        return len(request.data) if isinstance(request.data, list) else 1

    @extend_schema(
        request=EventInSerializer(many=True),
        responses={
            201: EventsResultSerializer,
            **COMMON_ERRORS,
            413: OpenApiResponse(ERROR, description="too_many_items / too_large"),
        },
        examples=[
            OpenApiExample(
                "One event",
                value={
                    "lead": {"email": "ana@example.com"},
                    "type": "page_view",
                    "properties": {"url": "/pricing"},
                    "event_id": "web-123",
                },
                request_only=True,
            )
        ],
        description="A single event object or a list of up to 1,000. `event_id` deduplicates per lead; "
        "a lead unknown by email is created. Any invalid item fails the whole request (400, "
        "`fields.items` keyed by index) and nothing is stored.",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise ApiError(
                f"Request body over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; send smaller batches.",
                code="too_large",
                status_code=413,
            )
        payload = request.data
        items = payload if isinstance(payload, list) else [payload]
        if len(items) > MAX_BATCH:
            raise ApiError(
                f"At most {MAX_BATCH} events per request; got {len(items)}.",
                code="too_many_items",
                status_code=413,
                fields={"items": [f"At most {MAX_BATCH} items."]},
            )
        if not items:
            raise ApiError(
                "Send at least one event.", code="validation_error", status_code=400, fields={"items": ["Empty list."]}
            )
        try:
            result = ingest_events(items)
        except ServiceError as exc:
            raise service_error(exc) from exc
        return Response(result, status=status.HTTP_201_CREATED)


# --- Webhooks ------------------------------------------------------------------------------


@extend_schema(responses={200: WebhookSubscriptionSerializer, **COMMON_ERRORS})
class WebhookViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = WebhookSubscriptionSerializer
    permission_classes = [permissions.RoleActionPermission]
    role_actions = dict.fromkeys(
        ("list", "create", "retrieve", "partial_update", "destroy", "options"), permissions.MANAGERS
    )
    queryset = WebhookSubscription.objects.order_by("id")
    filterset_fields = ["active", "failing"]
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(responses={201: WebhookCreatedSerializer, **COMMON_ERRORS})
    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sub = serializer.save(created_by=request.user)
        return Response(WebhookCreatedSerializer(sub).data, status=status.HTTP_201_CREATED)


# --- Historical import ---------------------------------------------------------------------


class CsvParser(FileUploadParser):
    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[override]
        return {"csv": stream.read()}


class ImportView(APIView):
    permission_classes = [permissions.RoleActionPermission]
    role_actions = {"post": permissions.MARKETING_AND_MANAGERS, "options": permissions.EVERY_ROLE}
    parser_classes = [CsvParser, MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request={
            "text/csv": OpenApiTypes.STR,
            "multipart/form-data": inline_serializer("ImportUpload", {"file": serializers.FileField()}),
            "application/json": inline_serializer(
                "ImportRows", {"rows": serializers.ListField(child=serializers.DictField())}
            ),
        },
        responses={200: ImportResultSerializer, **COMMON_ERRORS},
        description="Historical import in the CSV format of SPEC section 9 (or JSON rows with "
        "the same columns). Bad rows are rejected with their line; re-importing changes nothing.",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        if "csv" in data and isinstance(data["csv"], (bytes, str)):
            raw = data["csv"]
            source: Any = io.StringIO(raw.decode("utf-8-sig", errors="replace") if isinstance(raw, bytes) else raw)
        elif "file" in data and hasattr(data["file"], "read"):
            source = io.StringIO(data["file"].read().decode("utf-8-sig", errors="replace"))
        elif isinstance(data, dict) and isinstance(data.get("rows"), list):
            source = [row if isinstance(row, dict) else {} for row in data["rows"]]
        else:
            raise ApiError(
                "Send a text/csv body, a multipart 'file', or JSON {\"rows\": [...]}.",
                code="validation_error",
                status_code=400,
                fields={"file": ["Missing."]},
            )
        try:
            result = import_leads(source, user=request.user)
        except csv.Error as exc:
            raise ApiError(
                f"Not a readable CSV file: {exc}.",
                code="validation_error",
                status_code=400,
                fields={"file": [str(exc)]},
            ) from exc
        return Response(result.as_dict())
