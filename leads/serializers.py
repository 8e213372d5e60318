"""API bodies of SPEC section 6. Stage, scores and owner are read-only: they change through
transitions and assignment, never by writing the lead."""

from __future__ import annotations

import copy
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from sla import clocks as sla_clocks

from . import lifecycle
from .identity import IdentityError, clean_profiles, normalise_phone
from .lifecycle import LOST_REASONS
from .models import (
    IDENTIFIER_FIELDS,
    WRITABLE_FIELDS,
    Event,
    Lead,
    StageTransition,
    Team,
    Touch,
    TouchKind,
    TouchOutcome,
    WebhookEvent,
    WebhookSubscription,
)
from .url_guard import check_url

if TYPE_CHECKING:
    from django.contrib.auth.models import User

WRITABLE_LEAD_FIELDS = list(WRITABLE_FIELDS)
LEAD_FIELDS = [
    "id",
    *WRITABLE_LEAD_FIELDS,
    "stage",
    "fit_score",
    "behavior_score",
    "fit_grade",
    "owner",
    "team",
    "stage_entered_at",
    "sla_due_at",
    "created_at",
    "updated_at",
]


class LeadSerializer(serializers.ModelSerializer):
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    team: serializers.SlugRelatedField[Team] = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True
    )
    fit_grade = serializers.CharField(read_only=True)
    annual_revenue = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        coerce_to_string=False,
    )
    attributes = serializers.DictField(required=False)
    email = serializers.EmailField(max_length=254, required=False, allow_null=True, allow_blank=True)
    phone = serializers.CharField(
        max_length=40, required=False, allow_blank=True, help_text="Stored in E.164; a national number needs `country`."
    )
    social_profiles = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, help_text="Profile URLs (LinkedIn, X, ...)."
    )

    class Meta:
        model = Lead
        fields = LEAD_FIELDS
        # Stage, scores and owner change through transitions and assignment (SPEC section 6).
        read_only_fields = [name for name in LEAD_FIELDS if name not in WRITABLE_LEAD_FIELDS]

    _built_fields: ClassVar[dict[str, serializers.Field]]  # set by get_fields, per class

    def get_fields(self) -> dict[str, serializers.Field]:
        # ModelSerializer introspects the model again for every instance (most of the cost of
        # one lead's body); the result depends on the class only, so build it once per class
        # and hand out copies, as DRF does for declared fields.
        cls = type(self)
        built = cls.__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            cls._built_fields = built
        return copy.deepcopy(built)

    def validate_email(self, value: str | None) -> str | None:
        return (value or "").strip().lower() or None

    def validate_social_profiles(self, value: list[str]) -> list[str]:
        try:
            return clean_profiles(value)
        except IdentityError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The phone in E.164 (a national number read in the lead's country); a new lead needs
        at least one identifier (SPEC section 6: external_id, email or phone)."""
        attrs = super().validate(attrs)
        if attrs.get("phone"):
            country = attrs.get("country") or (self.instance.country if isinstance(self.instance, Lead) else "")
            try:
                attrs["phone"] = normalise_phone(attrs["phone"], country)
            except IdentityError as exc:
                raise serializers.ValidationError({"phone": [str(exc)]}) from exc
        if self.instance is None and not any(attrs.get(name) for name in IDENTIFIER_FIELDS):
            message = _("Give at least one of external_id, email or phone.")
            raise serializers.ValidationError({name: [message] for name in IDENTIFIER_FIELDS})
        if isinstance(self.instance, Lead) and not any(
            attrs.get(name, getattr(self.instance, name)) for name in IDENTIFIER_FIELDS
        ):
            raise serializers.ValidationError(
                {"email": [_("A lead keeps at least one of external_id, email or phone.")]}
            )
        return attrs

    def validate_external_id(self, value: str | None) -> str | None:
        return value or None

    def validate_country(self, value: str) -> str:
        value = (value or "").strip().upper()
        if value and (len(value) != 2 or not value.isalpha()):
            raise serializers.ValidationError(_("Use a two-letter ISO 3166-1 country code."))
        return value


_body_serializers = threading.local()


def lead_body(lead: Lead) -> dict[str, Any]:
    """`LeadSerializer(lead).data` for an answer, without building a serializer per call.

    Representing a lead only reads the serializer's fields, so one instance per thread serves
    every call (a tenth of the cost of a new one)."""
    serializer = getattr(_body_serializers, "serializer", None)
    if serializer is None:
        serializer = _body_serializers.serializer = LeadSerializer()
    return serializer.to_representation(lead)


class BulkLeadRowSerializer(LeadSerializer):
    """One row of `leads/bulk/`: uniqueness is the upsert's match, not an error."""

    class Meta(LeadSerializer.Meta):
        extra_kwargs: dict[str, dict[str, Any]] = {"email": {"validators": []}, "external_id": {"validators": []}}


class BulkLeadsSerializer(serializers.Serializer):
    leads = serializers.ListField(child=serializers.DictField(), max_length=1000)


class BulkRowResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "updated", "error"])
    repeat_of = serializers.IntegerField(
        required=False, help_text="The earlier row of this batch that named the same lead (its result is this one's)."
    )
    id = serializers.IntegerField(allow_null=True)
    # The metaclass takes declared fields off the class: this is the body's `errors`, it does not
    # replace Serializer.errors, which the stubs cannot tell.
    errors = serializers.DictField(required=False)  # type: ignore[assignment]


class BulkResultSerializer(serializers.Serializer):
    leads = serializers.IntegerField(help_text="Distinct leads the batch wrote.")
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    errors = serializers.IntegerField()  # type: ignore[assignment]  # the body's `errors`, as above
    results = BulkRowResultSerializer(many=True)


# --- Events --------------------------------------------------------------------------------


class EventLeadRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(required=False)
    email = serializers.EmailField(required=False)
    external_id = serializers.CharField(required=False)


class EventInSerializer(serializers.Serializer):
    """Documents one event of `POST /events/` (the endpoint validates in bulk, not through this)."""

    lead = EventLeadRefSerializer()
    type = serializers.CharField(max_length=100)
    occurred_at = serializers.DateTimeField(required=False)
    properties = serializers.DictField(required=False)
    event_id = serializers.CharField(max_length=255, required=False)


class EventsResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    leads_created = serializers.IntegerField()


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "event_id", "type", "occurred_at", "properties", "received_at"]


# --- Transitions and touches ----------------------------------------------------------------


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class RejectSerializer(NoteSerializer):
    reason = serializers.ChoiceField(choices=sorted(lifecycle.REJECT_REASONS))


class RecycleSerializer(NoteSerializer):
    reason = serializers.ChoiceField(choices=sorted(lifecycle.RECYCLE_REASONS))


class DisqualifySerializer(NoteSerializer):
    reason = serializers.ChoiceField(choices=sorted(lifecycle.DISQUALIFY_REASONS))


class CloseSerializer(NoteSerializer):
    outcome = serializers.ChoiceField(choices=["won", "lost"])
    amount = serializers.DecimalField(
        max_digits=16, decimal_places=2, min_value=Decimal(0), required=False, allow_null=True
    )
    reason = serializers.ChoiceField(choices=sorted(LOST_REASONS), required=False, allow_blank=True)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "boolean"},
            {
                "type": "object",
                "properties": {"value": {"type": "boolean"}, "note": {"type": "string"}},
                "required": ["value"],
            },
        ]
    }
)
class BantItemField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, bool):
            return {"value": data, "note": ""}
        if isinstance(data, dict) and isinstance(data.get("value"), bool):
            return {"value": data["value"], "note": str(data.get("note") or "")}
        raise serializers.ValidationError(_('Give true/false or {"value": true/false, "note": "..."}.'))


class BantSerializer(serializers.Serializer):
    budget = BantItemField()
    authority = BantItemField()
    need = BantItemField()
    timeline = BantItemField()


class QualifySerializer(NoteSerializer):
    """BANT either nested under `bant` or as top-level `budget`/`authority`/`need`/`timeline`."""

    bant = BantSerializer(required=False)
    budget = BantItemField(required=False)
    authority = BantItemField(required=False)
    need = BantItemField(required=False)
    timeline = BantItemField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        bant = dict(attrs.get("bant") or {})
        for key in lifecycle.BANT_KEYS:
            if key in attrs:
                bant[key] = attrs[key]
        missing = [key for key in lifecycle.BANT_KEYS if key not in bant]
        if missing:
            raise serializers.ValidationError(
                {"bant": [_("Record yes or no for: %(missing)s.") % {"missing": ", ".join(missing)}]}
            )
        return {"bant": bant, "note": attrs.get("note", "")}


class TouchSerializer(serializers.ModelSerializer):
    user: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    kind = serializers.ChoiceField(choices=TouchKind.choices)
    outcome = serializers.ChoiceField(choices=TouchOutcome.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)

    class Meta:
        model = Touch
        fields = ["id", "kind", "outcome", "note", "at", "user"]
        read_only_fields = ["id", "at", "user"]


class TransitionSerializer(serializers.ModelSerializer):
    actor: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = StageTransition
        fields = [
            "id",
            "from_stage",
            "to_stage",
            "at",
            "actor_type",
            "actor",
            "reason",
            "note",
            "fit_score",
            "behavior_score",
            "definition_version",
            "owner",
            "bant",
        ]


class SlaClockSerializer(serializers.Serializer):
    """One SLA clock of a lead (SPEC section 4): `clock` is the API code (accept, first_touch,
    min_touches, qualify)."""

    clock = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    state = serializers.ChoiceField(choices=["running", "met", "breached"])
    policy_version = serializers.IntegerField(allow_null=True)


class LeadDetailSerializer(LeadSerializer):
    """One lead as `GET /api/v1/leads/{id}/` answers: its fields and its SLA clocks."""

    sla_clocks = SlaClockSerializer(many=True, read_only=True)

    class Meta(LeadSerializer.Meta):
        fields = [*LEAD_FIELDS, "sla_clocks"]
        read_only_fields = [*LeadSerializer.Meta.read_only_fields, "sla_clocks"]


class SlaBreachSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    # The clock's API code (accept, first_touch, min_touches, qualify).
    clock = serializers.SerializerMethodField()
    policy_version = serializers.IntegerField(allow_null=True)
    stage = serializers.CharField()
    due_at = serializers.DateTimeField()
    detected_at = serializers.DateTimeField()
    action = serializers.CharField()

    @extend_schema_field(serializers.CharField())
    def get_clock(self, breach: Any) -> str:
        return sla_clocks.API_CODES.get(breach.clock, breach.clock)


class HistorySerializer(serializers.Serializer):
    transitions = TransitionSerializer(many=True)
    touches = TouchSerializer(many=True)
    events = EventSerializer(many=True)
    sla_breaches = SlaBreachSerializer(many=True)


# --- Webhooks ------------------------------------------------------------------------------


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices), allow_empty=False)
    secret = serializers.CharField(
        required=False,
        min_length=16,
        max_length=128,
        write_only=True,
        help_text="Generated when omitted; shown once in the creation response.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "events", "secret", "active", "failing", "created_at"]
        read_only_fields = ["id", "failing", "created_at"]

    def validate_url(self, value: str) -> str:
        try:
            check_url(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict.get("url", exc.messages)) from exc
        return value

    def validate_events(self, value: list[str]) -> list[str]:
        return sorted(set(value))


class WebhookCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(read_only=True)


# --- Import --------------------------------------------------------------------------------


class ImportResultSerializer(serializers.Serializer):
    job = serializers.UUIDField(required=False, help_text="The import job (CSV uploads).")
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"], required=False)
    url = serializers.URLField(required=False, help_text="Where to poll the job.")
    rows_processed = serializers.IntegerField(required=False)
    rows = serializers.IntegerField()
    encoding = serializers.CharField(help_text='As detected, e.g. "UTF-8 with BOM", "UTF-16", "Windows-1252".')
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected_count = serializers.IntegerField()
    rejected = serializers.ListField(
        child=serializers.DictField(), help_text='[{"line": 7, "column": "employees", "reason": "..."}]'
    )
    rejects_csv = serializers.URLField(required=False, help_text="The rejected rows as CSV.")
    created_owners = serializers.ListField(child=serializers.CharField())
