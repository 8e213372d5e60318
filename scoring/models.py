"""The qualified-lead definition: the versioned agreement of what makes a lead an MQL."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .engine import condition_problem


class DefinitionState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", _("Active")
    RETIRED = "retired", _("Retired")


class Operator(models.TextChoices):
    EQUALS = "equals", _("equals")
    IN = "in", _("is one of")
    CONTAINS = "contains", _("contains")
    REGEX = "regex", _("matches regex")
    GTE = "gte", _("≥")
    LTE = "lte", _("≤")
    BETWEEN = "between", _("between")
    IS_EMPTY = "is_empty", _("is empty")


def default_required_fields() -> list[str]:
    return ["email"]


def default_hand_raisers() -> list[str]:
    return ["demo_request", "contact_me"]


def _check_condition(operator: str, value, *, field: str = "value") -> None:
    problem = condition_problem(operator, value)
    if problem:
        template, values = problem
        message = gettext(template)
        raise ValidationError({field: message % values if values else message})


class QualifiedLeadDefinition(models.Model):
    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(unique=True, editable=False)
    state = models.CharField(max_length=10, choices=DefinitionState.choices, default=DefinitionState.DRAFT)
    fit_threshold = models.FloatField(default=50)
    behavior_threshold = models.FloatField(default=40)
    required_fields = models.JSONField(default=default_required_fields, blank=True)
    hand_raisers = models.JSONField(default=default_hand_raisers, blank=True)
    recycle_cooldown_days = models.PositiveIntegerField(default=30)
    review_by = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)

    marketing_signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    marketing_signed_at = models.DateTimeField(null=True, blank=True)
    sales_signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sales_signed_at = models.DateTimeField(null=True, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["state"], condition=Q(state="active"), name="one_active_definition"),
        ]

    def __str__(self) -> str:
        return f"v{self.version} {self.name} ({self.state})"

    def clean(self) -> None:
        errors = {}
        for name in ("required_fields", "hand_raisers"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                errors[name] = _('A list of names, e.g. ["email", "company"].')
        for name in ("fit_threshold", "behavior_threshold"):
            value = getattr(self, name)
            # A value that is not a number is already refused by the field's own check.
            if isinstance(value, (int, float)) and not 0 <= value <= 100:
                errors[name] = _("Scores run from 0 to 100.")
        if errors:
            raise ValidationError(errors)

    @property
    def is_draft(self) -> bool:
        return self.state == DefinitionState.DRAFT

    def missing_signoffs(self) -> list[str]:
        missing = []
        if self.marketing_signed_by_id is None:
            missing.append("marketing")
        if self.sales_signed_by_id is None:
            missing.append("sales manager")
        return missing

    def save(self, *args, **kwargs) -> None:  # noqa: DJ012 - beside the checks it completes
        if self.version is None:
            last = QualifiedLeadDefinition.objects.aggregate(m=models.Max("version"))["m"] or 0
            self.version = last + 1
        super().save(*args, **kwargs)


class FitRule(models.Model):
    definition = models.ForeignKey(QualifiedLeadDefinition, on_delete=models.CASCADE, related_name="fit_rules")
    name = models.CharField(max_length=200)
    field = models.CharField(
        max_length=100, help_text=_("A lead field (job_title, employees…) or a key of attributes.")
    )
    operator = models.CharField(max_length=10, choices=Operator.choices)
    value = models.JSONField(null=True, blank=True)
    points = models.FloatField()
    position = models.PositiveIntegerField(default=0)
    # Why a suggested rule has its points (leads matched, won, lift, interval): scoring.learn.
    evidence = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        _check_condition(self.operator, self.value)


class BehaviorRule(models.Model):
    definition = models.ForeignKey(QualifiedLeadDefinition, on_delete=models.CASCADE, related_name="behavior_rules")
    name = models.CharField(max_length=200)
    event_type = models.CharField(max_length=100)
    property = models.CharField(max_length=100, blank=True)
    property_operator = models.CharField(max_length=10, choices=Operator.choices, blank=True)
    property_value = models.JSONField(null=True, blank=True)
    points = models.FloatField()
    max_occurrences = models.PositiveIntegerField(null=True, blank=True)
    half_life_days = models.FloatField(null=True, blank=True, default=30)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.property:
            _check_condition(self.property_operator or "equals", self.property_value, field="property_value")
        elif self.property_operator:
            raise ValidationError({"property": _("Name the event property the filter looks at.")})
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise ValidationError({"half_life_days": _("A half-life is a positive number of days.")})


class Knockout(models.Model):
    definition = models.ForeignKey(QualifiedLeadDefinition, on_delete=models.CASCADE, related_name="knockouts")
    name = models.CharField(max_length=200)
    field = models.CharField(max_length=100)
    operator = models.CharField(max_length=10, choices=Operator.choices)
    value = models.JSONField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        _check_condition(self.operator, self.value)


class SignatureSide(models.TextChoices):
    MARKETING = "marketing", _("Marketing")
    SALES = "sales", _("Sales")


class VoidReason(models.TextChoices):
    EDITED = "edited", _("voided by edit")
    SUPERSEDED = "superseded", _("signed again")


class DefinitionSignature(models.Model):
    """One side's signature of a definition draft, bound to the content hash it signed.

    Append-only history: an edit of the signed content voids the signature (`voided_at`,
    `voided_by`, reason "edited") instead of deleting it, so "who signed what, and when was it
    voided" stays answerable. Activation counts only unvoided signatures on the current hash.
    """

    definition = models.ForeignKey(QualifiedLeadDefinition, on_delete=models.CASCADE, related_name="signatures")
    side = models.CharField(max_length=10, choices=SignatureSide.choices)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    content_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    void_reason = models.CharField(max_length=20, choices=VoidReason.choices, blank=True)

    class Meta:
        ordering = ["signed_at", "id"]
        constraints = [
            # At most one standing signature per side: signing again voids the earlier one.
            models.UniqueConstraint(
                fields=["definition", "side"], condition=Q(voided_at__isnull=True), name="one_standing_signature"
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.definition_id} {self.side} {self.content_hash[:12]}"

    @property
    def is_valid(self) -> bool:
        return self.voided_at is None


class ReviewOutcome(models.TextChoices):
    KEEP = "keep", _("Keep the agreement as it is")
    CHANGE = "change", _("Change it (a new draft)")


class DefinitionReview(models.Model):
    """The record of a quarterly review meeting of one version of the agreement (SPEC section 3):
    who met, what they decided, and whether the version stays or a new draft replaces it."""

    definition = models.ForeignKey(QualifiedLeadDefinition, on_delete=models.CASCADE, related_name="reviews")
    held_on = models.DateField(default=timezone.localdate)
    attendees = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    decisions = models.TextField(blank=True)
    outcome = models.CharField(max_length=10, choices=ReviewOutcome.choices)
    new_draft = models.ForeignKey(
        QualifiedLeadDefinition,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The draft that carries the changes, when the outcome is a change."),
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-held_on", "-id"]
        verbose_name = _("quarterly review")

    def __str__(self) -> str:
        return f"Review of v{self.definition_id} on {self.held_on}"

    def clean(self) -> None:
        if self.new_draft_id is not None and self.new_draft_id == self.definition_id:
            raise ValidationError({"new_draft": _("The new draft is another version than the one reviewed.")})


class NoticeKind(models.TextChoices):
    DUE_SOON = "due_soon", _("Review due in 14 days")
    OVERDUE = "overdue", _("Review overdue")


class ReviewNotice(models.Model):
    """A review reminder sent (e-mail) and shown (dashboard notice): one row per version, kind
    and review date, so a reminder goes out at most once however often beat runs."""

    definition = models.ForeignKey(QualifiedLeadDefinition, on_delete=models.CASCADE, related_name="review_notices")
    kind = models.CharField(max_length=10, choices=NoticeKind.choices)
    review_by = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "kind", "review_by"], name="one_review_notice"),
        ]

    def __str__(self) -> str:
        return f"v{self.definition_id} {self.kind} {self.review_by}"


class FeedbackDigestDelivery(models.Model):
    """A weekly feedback digest mailed to a marketer: the claim that makes the beat task safe to
    run twice (one row per user and week, unique)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    week_start = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "week_start"], name="one_feedback_digest_per_week"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.week_start}"


class RescoreKind(models.TextChoices):
    LEADS = "leads", _("The listed leads")
    ALL = "all", _("Every open lead")


class RescoreRequest(models.Model):
    """The rescoring outbox: a rescore asked for in a transaction is written in it, so it
    commits with its cause (stored events, an activated definition) or not at all. The task
    queued after commit claims the row and marks it done; `scoring.tasks.redo_rescore_outbox`
    (beat) queues again the rows whose claim ran out unfinished (a killed worker, a broker down
    at commit). Rescoring recomputes from stored facts, so running a row twice changes nothing."""

    kind = models.CharField(max_length=5, choices=RescoreKind.choices, default=RescoreKind.LEADS)
    lead_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # A worker's lease on the row, renewed after every batch it scores; once it lapses another
    # worker may take the row over.
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="rescore_pending_idx", condition=Q(done_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"rescore {self.kind} #{self.pk}"
