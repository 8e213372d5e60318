"""REST API v1 (SPEC section 6): leads, bulk upsert, events, transitions, touches, history,
webhooks, historical import and CSV export. Parses, authorises and serialises; the writing is
leads.services' and leads.lifecycle's.

Access follows leads.permissions: each view lists the roles allowed each action (anything
unlisted is refused); then a lead the caller may not see is a 404, and a move on a lead out of
a rep's reach is a 403 from the lifecycle. Writes to leads and events are marketing's
and managers' (a rep's token can do what the rep can do in the browser, no more).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authentication import TokenAuthentication
from rest_framework.decorators import action
from rest_framework.parsers import FileUploadParser, FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sla import clocks as sla_clocks
from sla.models import SlaBreach

from . import lifecycle, permissions
from .exceptions import ApiError
from .filters import LeadFilter
from .idempotency import idempotent
from .models import ImportJob, ImportStatus, Lead, Stage, StageTransition, WebhookSubscription
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
    LeadDetailSerializer,
    LeadSerializer,
    NoteSerializer,
    QualifySerializer,
    RecycleSerializer,
    RejectSerializer,
    SlaBreachSerializer,
    SlaClockSerializer,
    TouchSerializer,
    TransitionSerializer,
    WebhookCreatedSerializer,
    WebhookSubscriptionSerializer,
    lead_body,
)
from .services import export, import_jobs
from .services.errors import ServiceError
from .services.importer import ImportFileError, import_leads, rejects_csv
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

    @extend_schema(
        responses={200: LeadDetailSerializer, 301: OpenApiResponse(ERROR, description="merged"), **COMMON_ERRORS}
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """One lead with its SLA clocks (`sla_clocks`: clock, started_at, due_at, state,
        policy_version). A lead merged into another answers 301 with the survivor's id
        (`merged_into`) and URL (`Location`), so an integration holding the old id finds the
        person (issue 21)."""
        lead = self.get_object()
        if lead.merged_into_id is not None:
            target = reverse("api-lead-detail", kwargs={"pk": lead.merged_into_id})
            return Response(
                {
                    "code": "merged",
                    "detail": _("Lead %(lead)s was merged into lead %(survivor)s.")
                    % {"lead": lead.pk, "survivor": lead.merged_into_id},
                    "merged_into": lead.merged_into_id,
                    "fields": {},
                },
                status=status.HTTP_301_MOVED_PERMANENTLY,
                headers={"Location": request.build_absolute_uri(target)},
            )
        body = lead_body(lead)
        body["sla_clocks"] = SlaClockSerializer(sla_clocks.clock_states(lead), many=True).data
        return Response(body)

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
                _('Send {"leads": [...]} (or a JSON list) of up to 1,000 leads.'),
                code="validation_error",
                status_code=400,
                fields={"leads": [_("Expected a list.")]},
            )
        if len(rows) > MAX_BATCH:
            raise ApiError(
                _("At most %(max)s leads per request; got %(count)s.") % {"max": MAX_BATCH, "count": len(rows)},
                code="too_many_items",
                status_code=413,
                fields={"leads": [_("At most %(max)s items.") % {"max": MAX_BATCH}]},
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
                _("Request body over %(limit)s bytes; send smaller batches.")
                % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
                code="too_large",
                status_code=413,
            )
        payload = request.data
        items = payload if isinstance(payload, list) else [payload]
        if len(items) > MAX_BATCH:
            raise ApiError(
                _("At most %(max)s events per request; got %(count)s.") % {"max": MAX_BATCH, "count": len(items)},
                code="too_many_items",
                status_code=413,
                fields={"items": [_("At most %(max)s items.") % {"max": MAX_BATCH}]},
            )
        if not items:
            raise ApiError(
                _("Send at least one event."),
                code="validation_error",
                status_code=400,
                fields={"items": [_("Empty list.")]},
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
    """A text/csv body, copied to disk block by block (never held in memory), refused with 413
    past settings.IMPORT_MAX_BYTES."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[override]
        if stream is None:
            return {}
        try:
            path, size = import_jobs.save_upload(stream)
        except import_jobs.TooLarge as exc:
            raise _too_large() from exc
        return {"csv_path": (path, size)}


def _too_large() -> ApiError:
    limit = settings.IMPORT_MAX_BYTES
    return ApiError(
        _("The file is larger than the import limit of %(limit)d bytes.") % {"limit": limit},
        code="file_too_large",
        status_code=413,
        fields={"file": [_("At most %(limit)d bytes.") % {"limit": limit}]},
    )


def _job_body(job: ImportJob, request: Request) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job": str(job.pk),
        "status": job.status,
        "rows_processed": job.rows_processed,
        "url": request.build_absolute_uri(reverse("api-import-job", args=[job.pk])),
    }
    if job.result is not None:
        body.update(job.result)
        body["rejects_csv"] = request.build_absolute_uri(reverse("api-import-job-rejects", args=[job.pk]))
    if job.error:
        body["error"] = job.error
    return body


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
        responses={200: ImportResultSerializer, 202: ImportResultSerializer, **COMMON_ERRORS},
        description="Historical import in the CSV format of SPEC section 9 (or JSON rows with "
        "the same columns). Every row is validated before any is written; bad rows are rejected "
        "with their line, column and reason; re-importing changes nothing. A CSV file up to "
        "IMPORT_SYNC_MAX_BYTES is imported during the request (200, the summary); a larger one "
        "is queued (202) and polled at `url`. Above IMPORT_MAX_BYTES: 413.",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > settings.IMPORT_MAX_BYTES + 64 * 1024:
            raise _too_large()
        data = request.data if isinstance(request.data, dict) else {}
        if "csv_path" in data:
            path, size = data["csv_path"]
        elif "file" in data and hasattr(data["file"], "read"):
            upload = data["file"]
            if upload.size is not None and upload.size > settings.IMPORT_MAX_BYTES:
                raise _too_large()
            try:
                path, size = import_jobs.save_upload(upload)
            except import_jobs.TooLarge as exc:
                raise _too_large() from exc
        elif isinstance(data.get("rows"), list):
            # JSON rows are in memory already (the request body's limit bounds them): imported
            # now, without a job.
            try:
                result = import_leads([row if isinstance(row, dict) else {} for row in data["rows"]], user=request.user)
            except ImportFileError as exc:  # pragma: no cover - JSON rows have no file to misread
                raise ApiError(str(exc), code="validation_error", status_code=400, fields={"rows": [str(exc)]}) from exc
            return Response(result.as_dict())
        else:
            raise ApiError(
                _("Send a text/csv body, a multipart 'file', or JSON {\"rows\": [...]}."),
                code="validation_error",
                status_code=400,
                fields={"file": [_("Missing.")]},
            )
        job = import_jobs.start_import(path, size, user=request.user)
        if job.status == ImportStatus.FAILED:
            raise ApiError(job.error, code="validation_error", status_code=400, fields={"file": [job.error]})
        if job.status == ImportStatus.DONE:
            return Response(_job_body(job, request))
        return Response(_job_body(job, request), status=status.HTTP_202_ACCEPTED)


class ImportJobView(APIView):
    """`GET /api/v1/import/jobs/{id}/`: a job's status, rows done and, once done, the summary."""

    permission_classes = [permissions.RoleActionPermission]
    role_actions = {"get": permissions.MARKETING_AND_MANAGERS, "options": permissions.EVERY_ROLE}

    @extend_schema(responses={200: ImportResultSerializer, **COMMON_ERRORS})
    def get(self, request: Request, pk: str) -> Response:
        return Response(_job_body(get_object_or_404(ImportJob, pk=pk), request))


class ImportRejectsView(APIView):
    """`GET /api/v1/import/jobs/{id}/rejects/`: the rejected rows as CSV (line, column, reason)."""

    permission_classes = [permissions.RoleActionPermission]
    role_actions = {"get": permissions.MARKETING_AND_MANAGERS, "options": permissions.EVERY_ROLE}

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR, **COMMON_ERRORS})
    def get(self, request: Request, pk: str) -> StreamingHttpResponse:
        job = get_object_or_404(ImportJob, pk=pk)
        if job.result is None:
            raise ApiError(_("The import has not finished."), code="not_ready", status_code=409, status=job.status)
        response = StreamingHttpResponse(rejects_csv(job.result["rejected"]), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejects.csv"'
        return response
