"""REST API v1 (SPEC section 6): leads, bulk upsert, events, transitions, touches, history,
webhooks, historical import and CSV export.

Access follows leads.permissions: a lead the caller may not see is a 404; a move the caller may
not make is a 403 from the transitions module. Writes to leads and events are marketing's and
managers' (a rep's token can do what the rep can do in the browser, no more).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import uuid
from typing import Any, Callable

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, permissions as drf_permissions, serializers, status, viewsets
from rest_framework.authentication import TokenAuthentication
from rest_framework.decorators import action
from rest_framework.parsers import FileUploadParser, FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from scoring import services as scoring
from rest_framework.views import APIView

from . import permissions, transitions
from .bulk import insert_columns, insert_objects
from .exceptions import ApiError
from .filters import LeadFilter
from .idempotency import idempotent
from .models import Event, Lead
from .serializers import (
    BulkLeadRowSerializer,
    BulkLeadsSerializer,
    BulkResultSerializer,
    CloseSerializer,
    DisqualifySerializer,
    EventInSerializer,
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
    EventSerializer,
    WebhookCreatedSerializer,
    WebhookSubscriptionSerializer,
    lead_body,
)
from .services import export
from .services.importer import import_leads
from .webhooks import WebhookSubscription

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

log = logging.getLogger(__name__)


def actor_for(request: Request) -> transitions.Actor:
    if isinstance(request.successful_authenticator, TokenAuthentication):
        return transitions.Actor.api(request.user)
    return transitions.Actor.person(request.user)


class CanWriteLeads(drf_permissions.BasePermission):
    """Creating and editing leads and posting events: marketing and managers."""

    message = "Only marketing and sales managers may write leads and events."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in drf_permissions.SAFE_METHODS:
            return True
        # On the lead viewset, transitions and touches are checked by leads.transitions.
        if getattr(view, "action", None) not in (None, "create", "update", "partial_update", "bulk"):
            return True
        return permissions.is_marketing(request.user) or permissions.is_manager(request.user)


class ManagesWebhooks(drf_permissions.BasePermission):
    message = "Only sales managers manage webhooks."

    def has_permission(self, request: Request, view: Any) -> bool:
        return permissions.is_manager(request.user)


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
    permission_classes = [drf_permissions.IsAuthenticated, CanWriteLeads]
    http_method_names = ["get", "post", "patch", "head", "options"]
    # A non-numeric id is a 404 from the router, never a ValueError in the lookup.
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        qs = Lead.objects.select_related("owner", "team").order_by("-created_at", "-id")
        return permissions.visible_leads(self.request.user, qs)

    def get_lead(self) -> Lead:
        return get_object_or_404(permissions.visible_leads(self.request.user), pk=self.kwargs["pk"])

    @extend_schema(responses={201: LeadSerializer, **COMMON_ERRORS})
    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                lead = serializer.save()
                scoring.on_lead_changed([lead.pk])
        except IntegrityError as exc:
            raise ApiError(
                "A lead with this email or external_id already exists.", code="validation_error",
                status_code=400, fields={"email": ["Already exists."]},
            ) from exc
        return Response(self.get_serializer(lead).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: LeadSerializer) -> None:
        with transaction.atomic():
            lead = serializer.save()
            scoring.on_lead_changed([lead.pk])

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
                "Send {\"leads\": [...]} (or a JSON list) of up to 1,000 leads.",
                code="validation_error", status_code=400, fields={"leads": ["Expected a list."]},
            )
        if len(rows) > MAX_BATCH:
            raise ApiError(
                f"At most {MAX_BATCH} leads per request; got {len(rows)}.", code="too_many_items",
                status_code=413, fields={"leads": [f"At most {MAX_BATCH} items."]},
            )
        return Response(bulk_upsert(rows))

    @extend_schema(
        parameters=[], responses={(200, "text/csv"): OpenApiTypes.STR, **COMMON_ERRORS},
        description="The list's filters apply; the columns are those of the historical import.",
    )
    @action(detail=False, methods=["get"], url_path="export")
    def export_csv(self, request: Request) -> StreamingHttpResponse:
        queryset = self.filter_queryset(self.get_queryset())
        response = StreamingHttpResponse(export.rows(queryset), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="leads.csv"'
        return response

    # --- Transitions ---

    def _move(self, request: Request, serializer_class: type, call: Callable[..., Any]) -> Response:
        lead = self.get_lead()
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        transition = call(lead, actor=actor_for(request), **serializer.validated_data)
        # The row as the move locked and wrote it, owner and team included: no re-read.
        return Response(lead_body(transition.lead))

    @extend_schema(request=NoteSerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        return self._move(request, NoteSerializer, transitions.accept)

    @extend_schema(request=RejectSerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        return self._move(request, RejectSerializer, transitions.reject)

    @extend_schema(request=QualifySerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def qualify(self, request: Request, pk: str) -> Response:
        return self._move(request, QualifySerializer, transitions.qualify)

    @extend_schema(request=RecycleSerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def recycle(self, request: Request, pk: str) -> Response:
        return self._move(request, RecycleSerializer, transitions.recycle)

    @extend_schema(
        request=DisqualifySerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS}
    )
    @action(detail=True, methods=["post"])
    def disqualify(self, request: Request, pk: str) -> Response:
        return self._move(request, DisqualifySerializer, transitions.disqualify)

    @extend_schema(request=CloseSerializer, responses={200: LeadSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        return self._move(request, CloseSerializer, transitions.close)

    @extend_schema(request=TouchSerializer, responses={201: TouchSerializer, **TRANSITION_ERRORS})
    @action(detail=True, methods=["post"])
    def touches(self, request: Request, pk: str) -> Response:
        lead = self.get_lead()
        serializer = TouchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        touch = transitions.log_touch(lead, actor=actor_for(request), **serializer.validated_data)
        return Response(TouchSerializer(touch).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: HistorySerializer, **COMMON_ERRORS})
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        lead = self.get_lead()
        return Response(
            {
                "transitions": TransitionSerializer(
                    lead.transitions.select_related("actor", "owner").order_by("at", "id"), many=True
                ).data,
                "touches": TouchSerializer(
                    lead.touches.select_related("user").order_by("at", "id"), many=True
                ).data,
                "events": EventSerializer(
                    lead.events.order_by("-occurred_at", "-id")[:HISTORY_EVENTS], many=True
                ).data,
                "sla_breaches": SlaBreachSerializer(
                    lead.sla_breaches.order_by("detected_at", "id"), many=True
                ).data,
            }
        )


def bulk_upsert(rows: list[Any]) -> dict[str, Any]:
    """Upsert leads matched by external_id, then email. Invalid rows are reported and skipped;
    the valid ones are written in one transaction (a row is written whole or not at all)."""
    results: list[dict[str, Any]] = [{} for _ in rows]
    valid: list[tuple[int, dict[str, Any]]] = []
    for index, row in enumerate(rows):
        serializer = BulkLeadRowSerializer(data=row if isinstance(row, dict) else {})
        if not isinstance(row, dict):
            results[index] = {"index": index, "status": "error", "id": None,
                              "errors": {"non_field_errors": ["Expected an object."]}}
        elif serializer.is_valid():
            valid.append((index, serializer.validated_data))
        else:
            results[index] = {"index": index, "status": "error", "id": None,
                              "errors": _plain(serializer.errors)}
    with transaction.atomic():
        ext_ids = {data["external_id"] for _, data in valid if data.get("external_id")}
        emails = {data["email"] for _, data in valid}
        by_ext = {lead.external_id: lead for lead in Lead.objects.filter(external_id__in=ext_ids)}
        by_email = {lead.email: lead for lead in Lead.objects.filter(email__in=emails)}
        new: dict[str, Lead] = {}
        touched: dict[int, tuple[Lead, set[str]]] = {}
        row_target: dict[int, Lead] = {}
        for index, data in valid:
            ext = data.get("external_id")
            lead = by_ext.get(ext) if ext else None
            email_owner = by_email.get(data["email"]) or new.get(data["email"])
            if email_owner is not None and lead is not None and email_owner.pk is not None:
                # Two queries give two instances of one row: keep one per primary key.
                email_owner = lead if email_owner.pk == lead.pk else email_owner
            if lead is not None and email_owner is not None and email_owner is not lead:
                results[index] = {"index": index, "status": "error", "id": None, "errors": {
                    "email": [f"Belongs to another lead ({email_owner.pk or 'new'}) than external_id '{ext}'."]}}
                continue
            lead = lead or email_owner
            if lead is None:
                lead = Lead(**data)
                new[data["email"]] = lead
                if ext:
                    by_ext[ext] = lead
                results[index] = {"index": index, "status": "created"}
            else:
                if ext and lead.external_id and lead.external_id != ext:
                    results[index] = {"index": index, "status": "error", "id": None, "errors": {
                        "external_id": [f"Email '{data['email']}' belongs to a lead with external_id '{lead.external_id}'."]}}
                    continue
                for name, value in data.items():
                    setattr(lead, name, value)
                if lead.pk is not None:
                    changed = touched.setdefault(lead.pk, (lead, set()))[1]
                    changed.update(data)
                if ext:
                    by_ext[ext] = lead
                by_email[lead.email] = lead
                results[index] = {"index": index, "status": "updated" if lead.pk else "created"}
            row_target[index] = lead
        if new:
            Lead.objects.bulk_create(list(new.values()), batch_size=500)
            missing = [lead.email for lead in new.values() if lead.pk is None]
            if missing:  # backends that do not return ids from bulk inserts
                ids = dict(Lead.objects.filter(email__in=missing).values_list("email", "id"))
                for lead in new.values():
                    lead.pk = lead.pk or ids.get(lead.email)
        fields = sorted({name for _, names in touched.values() for name in names} | {"updated_at"})
        if touched:
            now = timezone.now()
            for lead, _ in touched.values():
                lead.updated_at = now
            Lead.objects.bulk_update([lead for lead, _ in touched.values()], fields, batch_size=500)
        for index, lead in row_target.items():
            results[index]["id"] = lead.pk
        if row_target:
            scoring.on_lead_changed([lead.pk for lead in row_target.values()])
    counts = {"created": 0, "updated": 0, "error": 0}
    for result in results:
        counts[result["status"]] += 1
    return {"created": counts["created"], "updated": counts["updated"],
            "errors": counts["error"], "results": results}


def _plain(errors: Any) -> Any:
    if isinstance(errors, dict):
        return {key: _plain(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [_plain(item) for item in errors]
    return str(errors)


# --- Events --------------------------------------------------------------------------------


class EventsView(APIView):
    """Behaviour events, one or up to 1,000 per request."""

    permission_classes = [drf_permissions.IsAuthenticated, CanWriteLeads]
    parser_classes = [JSONParser]

    @extend_schema(
        request=EventInSerializer(many=True),
        responses={
            201: EventsResultSerializer, **COMMON_ERRORS,
            413: OpenApiResponse(ERROR, description="too_many_items / too_large"),
        },
        examples=[
            OpenApiExample(
                "One event",
                value={"lead": {"email": "ana@example.com"}, "type": "page_view",
                       "properties": {"url": "/pricing"}, "event_id": "web-123"},
                request_only=True,
            )
        ],
        description="A single event object or a list of up to 1,000. `event_id` deduplicates; "
        "a lead unknown by email is created. Any invalid item fails the whole request (400, "
        "`fields.items` keyed by index) and nothing is stored.",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise ApiError(
                f"Request body over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; send smaller batches.",
                code="too_large", status_code=413,
            )
        payload = request.data
        items = payload if isinstance(payload, list) else [payload]
        if len(items) > MAX_BATCH:
            raise ApiError(
                f"At most {MAX_BATCH} events per request; got {len(items)}.",
                code="too_many_items", status_code=413,
                fields={"items": [f"At most {MAX_BATCH} items."]},
            )
        if not items:
            raise ApiError("Send at least one event.", code="validation_error", status_code=400,
                           fields={"items": ["Empty list."]})
        return Response(ingest_events(items), status=status.HTTP_201_CREATED)


def _validate_event(item: Any, now: dt.datetime) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(item, dict):
        return None, {"non_field_errors": ["Expected an object."]}
    ref = item.get("lead")
    if not isinstance(ref, dict) or not any(ref.get(k) not in (None, "") for k in ("id", "email", "external_id")):
        errors["lead"] = ["Give an object with one of id, email or external_id."]
    else:
        lead_id = ref.get("id")
        if lead_id is not None and (not isinstance(lead_id, int) or isinstance(lead_id, bool) or lead_id < 1):
            errors["lead"] = ["id must be a positive integer."]
        email = ref.get("email")
        if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > 254 or email != email.strip()):
            errors["lead"] = ["email is not a valid address."]
        ext = ref.get("external_id")
        if ext is not None and (not isinstance(ext, str) or len(ext) > 255):
            errors["lead"] = ["external_id must be a string of at most 255 characters."]
    kind = item.get("type")
    if not isinstance(kind, str) or not kind.strip() or len(kind) > 100:
        errors["type"] = ["Required: a string of 1 to 100 characters."]
    occurred = item.get("occurred_at")
    if occurred is None:
        occurred_at = now
    else:
        occurred_at = None
        if isinstance(occurred, str):
            try:
                occurred_at = parse_datetime(occurred)
            except ValueError:
                occurred_at = None
        if occurred_at is None:
            errors["occurred_at"] = ["Use an ISO 8601 date-time."]
        elif timezone.is_naive(occurred_at):
            occurred_at = timezone.make_aware(occurred_at, dt.timezone.utc)
    props = item.get("properties", {})
    if props is None:
        props = {}
    if not isinstance(props, dict):
        errors["properties"] = ["Must be an object."]
    event_id = item.get("event_id")
    if event_id is None:
        event_id = uuid.uuid4().hex
    elif not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        errors["event_id"] = ["Must be a string of 1 to 255 characters."]
    if errors:
        return None, errors
    return {
        "ref": ref, "type": kind.strip(), "occurred_at": occurred_at, "properties": props,
        "event_id": event_id,
    }, {}


EventRow = tuple  # values of EVENT_COLUMNS, in that order
EVENT_COLUMNS = ("lead", "type", "occurred_at", "properties", "event_id", "received_at")


def _insert_events(rows: list[EventRow]) -> list[EventRow]:
    """Insert, skipping event_ids already stored; returns the rows actually inserted. Plain
    tuples, not Event instances: building a thousand model objects cost more than the insert."""
    if connection.vendor == "postgresql":
        # One array per column: psycopg2 adapts a list of ints, strings or datetimes in C, where
        # a VALUES row per event went through Python's mogrify a thousand times.
        fields = [Event._meta.get_field(name) for name in EVENT_COLUMNS]
        kept = set(insert_columns(
            Event, fields, list(zip(*rows)), ignore_conflicts=True, returning=Event._meta.get_field("event_id")
        ))
        return [row for row in rows if row[4] in kept]
    existing = set(
        Event.objects.filter(event_id__in=[row[4] for row in rows]).values_list("event_id", flat=True)
    )
    fresh = [row for row in rows if row[4] not in existing]
    Event.objects.bulk_create(
        [Event(lead_id=lead_id, type=kind, occurred_at=occurred_at, properties=props, event_id=event_id,
               received_at=received_at)
         for lead_id, kind, occurred_at, props, event_id, received_at in fresh],
        ignore_conflicts=True, batch_size=1000,
    )
    return fresh


DEADLOCK_RETRIES = 3


def ingest_events(items: list[Any]) -> dict[str, int]:
    """Validate in bulk, resolve leads in three queries, create unknown emails in bulk, insert
    events with `ON CONFLICT DO NOTHING` on `event_id`, then tell scoring, all in one transaction.

    Batches from concurrent clients share leads. Each locks its existing leads in id order first,
    so two batches queue instead of deadlocking; should the database still pick one as a
    deadlock victim (another writer on the same leads), the batch is retried whole, which
    changes nothing twice: event ids are fixed before the first try and deduplicated on insert.
    """
    now = timezone.now()
    parsed: list[dict[str, Any]] = []
    item_errors: dict[str, Any] = {}
    for index, item in enumerate(items):
        data, errors = _validate_event(item, now)
        if errors:
            item_errors[str(index)] = errors
        else:
            parsed.append(data)  # type: ignore[arg-type]
    if item_errors:
        raise ApiError(
            f"{len(item_errors)} invalid event(s) at index {', '.join(list(item_errors)[:20])}; nothing stored.",
            code="validation_error", status_code=400, fields={"items": item_errors},
        )
    for attempt in range(DEADLOCK_RETRIES + 1):
        try:
            return _store_events(items, parsed, now)
        except OperationalError as exc:
            if attempt == DEADLOCK_RETRIES or getattr(exc.__cause__, "pgcode", None) != "40P01":
                raise
            log.warning("Event batch chosen as a deadlock victim; retrying (%d)", attempt + 1)
    raise AssertionError("unreachable")


def _store_events(items: list[Any], parsed: list[dict[str, Any]], now: dt.datetime) -> dict[str, int]:
    ids = {d["ref"]["id"] for d in parsed if d["ref"].get("id") is not None}
    exts = {d["ref"]["external_id"] for d in parsed if d["ref"].get("id") is None and d["ref"].get("external_id")}
    emails = {d["ref"]["email"].lower() for d in parsed if d["ref"].get("email")}
    with transaction.atomic():
        known_ids = set(Lead.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
        by_ext = dict(Lead.objects.filter(external_id__in=exts).values_list("external_id", "pk")) if exts else {}
        by_email = dict(Lead.objects.filter(email__in=emails).values_list("email", "pk")) if emails else {}
        existing = sorted(known_ids | set(by_ext.values()) | set(by_email.values()))
        score_later = settings.SCORING_EVENTS_ASYNC
        if existing and not score_later:
            # The row locks scoring and promotion take anyway, taken up front and in one order.
            list(Lead.objects.select_for_update(no_key=True).filter(pk__in=existing).order_by("pk").values_list("pk"))
        unknown: dict[str, list[str]] = {}
        to_create: dict[str, Lead] = {}
        for index, d in enumerate(parsed):
            ref = d["ref"]
            email = ref["email"].lower() if ref.get("email") else None
            if ref.get("id") is not None:
                if ref["id"] not in known_ids:
                    unknown[str(index)] = [f"No lead with id {ref['id']}."]
            elif ref.get("external_id") and ref["external_id"] in by_ext:
                pass
            elif email:
                if email not in by_email and email not in to_create:
                    to_create[email] = Lead(
                        email=email, external_id=ref.get("external_id") or None,
                        first_name=str(ref.get("first_name") or "")[:100],
                        last_name=str(ref.get("last_name") or "")[:100],
                        source=str(ref.get("source") or "event")[:100],
                    )
            else:
                unknown[str(index)] = [f"No lead with external_id '{ref['external_id']}'; add an email to create it."]
        if unknown:
            raise ApiError(
                f"{len(unknown)} event(s) refer to unknown leads; nothing stored.",
                code="validation_error", status_code=400,
                fields={"items": {k: {"lead": v} for k, v in unknown.items()}},
            )
        leads_created = 0
        if to_create:
            # Sorted, so concurrent batches take the unique-index locks in one order (no deadlock).
            insert_objects(Lead, [to_create[email] for email in sorted(to_create)], ignore_conflicts=True)
            # Another request may have created some of them meanwhile: read the ids back.
            by_email.update(
                Lead.objects.filter(email__in=list(to_create)).values_list("email", "pk")
            )
            leads_created = len(to_create)
        events: dict[str, EventRow] = {}
        for d in parsed:
            ref = d["ref"]
            if ref.get("id") is not None:
                lead_id = ref["id"]
            elif ref.get("external_id") and ref["external_id"] in by_ext:
                lead_id = by_ext[ref["external_id"]]
            else:
                lead_id = by_email[ref["email"].lower()]
            events.setdefault(
                d["event_id"], (lead_id, d["type"], d["occurred_at"], d["properties"], d["event_id"], now)
            )
        fresh = _insert_events(list(events.values()))
        lead_ids = sorted({row[0] for row in fresh})
        if score_later:
            scoring.rescore_after_commit([*lead_ids, *(by_email[email] for email in to_create)])
        else:
            if lead_ids:
                scoring.on_events_recorded(lead_ids, now=now)
            if leads_created:
                scoring.on_lead_changed([by_email[email] for email in to_create])
    return {
        "received": len(items), "created": len(fresh), "duplicates": len(items) - len(fresh),
        "leads_created": leads_created,
    }


# --- Webhooks ------------------------------------------------------------------------------


@extend_schema(responses={200: WebhookSubscriptionSerializer, **COMMON_ERRORS})
class WebhookViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet,
):
    serializer_class = WebhookSubscriptionSerializer
    permission_classes = [drf_permissions.IsAuthenticated, ManagesWebhooks]
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
    permission_classes = [drf_permissions.IsAuthenticated, CanWriteLeads]
    parser_classes = [CsvParser, MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request={
            "text/csv": OpenApiTypes.STR,
            "multipart/form-data": inline_serializer(
                "ImportUpload", {"file": serializers.FileField()}
            ),
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
        if not (permissions.is_marketing(request.user) or permissions.is_manager(request.user)):
            raise ApiError("Only marketing and sales managers may import.",
                           code="permission_denied", status_code=403)
        data = request.data if hasattr(request.data, "get") else {}
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
                code="validation_error", status_code=400, fields={"file": ["Missing."]},
            )
        try:
            result = import_leads(source, user=request.user)
        except csv.Error as exc:
            raise ApiError(f"Not a readable CSV file: {exc}.", code="validation_error",
                           status_code=400, fields={"file": [str(exc)]}) from exc
        return Response(result.as_dict())
