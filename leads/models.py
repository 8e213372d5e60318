"""The lead lifecycle's data: leads, teams, behaviour events, the stage audit trail, touches.

`Lead.stage` and its companions are denormalised for fast inboxes and sweeps; they are written
only by `leads.lifecycle.core`. `StageTransition` is the append-only record of every move.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scoring.engine import fit_grade

from .url_guard import check_url


class Stage(models.TextChoices):
    LEAD = "lead", _("Lead")
    MQL = "mql", _("MQL")
    SAL = "sal", _("SAL")
    SQL = "sql", _("SQL")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")
    RECYCLED = "recycled", _("Recycled")
    DISQUALIFIED = "disqualified", _("Disqualified")


# Stages a lead is "open" in: scoring can still promote it, or an SLA clock can run on it.
OPEN_STAGES = (Stage.LEAD, Stage.MQL, Stage.SAL, Stage.RECYCLED)
# A lead's descriptive columns (what a CRM sends, an import maps, a fit rule may name), and
# with its identifiers and free attributes, what an API client or an import may write.
PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "job_title",
    "industry",
    "country",
    "employees",
    "annual_revenue",
    "source",
)
# The fields that identify a person, in the order an upsert or import matches on them (SPEC
# section 6): a lead needs at least one.
IDENTIFIER_FIELDS = ("external_id", "email", "phone")
WRITABLE_FIELDS = (*IDENTIFIER_FIELDS, *PROFILE_FIELDS, "social_profiles", "attributes")
# Stages in which an SLA clock can be running (the sweep's partial index covers exactly these).
CLOCKED_STAGES = (Stage.MQL, Stage.SAL)


class SlaClock(models.TextChoices):
    MQL_DECISION = "mql_decision", _("MQL: accept or reject")
    SAL_FIRST_TOUCH = "sal_first_touch", _("SAL: first touch")
    SAL_MIN_TOUCHES = "sal_min_touches", _("SAL: minimum touches")
    SAL_QUALIFY = "sal_qualify", _("SAL: qualify or drop")


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    territories = models.JSONField(
        default=list,
        blank=True,
        help_text=_('ISO country codes this team owns, e.g. ["US", "CA"].'),
    )
    is_fallback = models.BooleanField(default=False, help_text=_("Receives leads whose country no team claims."))
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_teams",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TeamMembership", related_name="teams", blank=True
    )
    # Issue 24: notices to the team as a whole, or about its unassigned leads, go out in the
    # team's language and show times in its zone; blank means the site's default.
    language = models.CharField(
        _("default language"), max_length=10, choices=settings.LANGUAGES, blank=True, default=""
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, blank=True, default="", help_text=_("IANA name, e.g. Europe/Madrid")
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    """A rep in a team. `last_assigned_at` drives round-robin; `is_away` skips the rep."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships")
    is_away = models.BooleanField(default=False)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="unique_team_member"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class UserProfile(models.Model):
    """A user's own settings (issue 24): the language of their pages and e-mails and the time
    zone their dates are shown in. Blank falls back to their team's, then to the site's."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    language = models.CharField(
        _("preferred language"), max_length=10, choices=settings.LANGUAGES, blank=True, default=""
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, blank=True, default="", help_text=_("IANA name, e.g. Europe/Bucharest")
    )

    class Meta:
        verbose_name = _("user profile")
        verbose_name_plural = _("user profiles")

    def __str__(self) -> str:
        return str(self.user)


def contact_label(first_name: str, last_name: str, email: str | None) -> str:
    """How a lead is named in lists and emails: "Ana Lee <ana@example.com>", or the address."""
    name = f"{first_name} {last_name}".strip()
    if not email:
        return name
    return f"{name} <{email}>" if name else email


class Lead(models.Model):
    # Unique among the leads that have one (the constraint below): most leads come from forms
    # and events and have none, and a unique index over NULLs is one more entry to write for
    # every new row version of them (a big SLA sweep recycles a quarter of a million).
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL, see above
    # Optional: a lead may be known only by an external id or a phone number. NULL, not "", when
    # absent, so the unique constraint holds among the leads that have one.
    email = models.EmailField(max_length=254, unique=True, null=True, blank=True)
    # E.164 ("+14155550123"), normalised by `leads.identity.normalise_phone`; matched on by upserts.
    phone = models.CharField(max_length=20, blank=True, db_index=True)
    # Profile URLs (LinkedIn, X, ...): a list of http(s) URLs.
    social_profiles = models.JSONField(default=list, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    company = models.CharField(max_length=200, blank=True)
    job_title = models.CharField(max_length=200, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text=_("ISO 3166-1 alpha-2"))
    employees = models.PositiveIntegerField(null=True, blank=True)
    annual_revenue = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    source = models.CharField(max_length=100, blank=True)
    attributes = models.JSONField(default=dict, blank=True)

    # Denormalised lifecycle state, written only by leads.lifecycle.
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.LEAD)
    stage_entered_at = models.DateTimeField(default=timezone.now)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_leads",
        # lead_inbox_idx starts with owner_id and serves every lookup by owner.
        db_index=False,
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads")
    fit_score = models.FloatField(default=0)
    behavior_score = models.FloatField(default=0)
    # When behavior_score was last computed: decay is relative to this moment.
    scored_at = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField(null=True, blank=True)
    sla_clock = models.CharField(max_length=30, choices=SlaClock.choices, blank=True)
    sla_warned_at = models.DateTimeField(null=True, blank=True)
    # When the running clock reaches its policy's warning share; stored so the sweep finds
    # leads to warn with one indexed query instead of recomputing business time per lead.
    sla_warn_at = models.DateTimeField(null=True, blank=True)
    first_touch_at = models.DateTimeField(null=True, blank=True)
    recycle_count = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    # Duplicates and privacy (issue 21, `leads.services.merge` / `leads.services.privacy`).
    # A merged lead stays as a redirect: its stage history keeps counting in the reports, and
    # its id keeps answering with the survivor's.
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="merged_leads",
        help_text=_("The lead this duplicate was merged into."),
    )
    merged_at = models.DateTimeField(null=True, blank=True)
    # Consent: an opted-out lead is never e-mailed (`may_email`); set by an `unsubscribe`
    # event, the consent API or the admin, and recorded with when and how.
    email_opt_out = models.BooleanField(default=False, verbose_name=_("e-mail opt-out"))
    email_opt_out_at = models.DateTimeField(null=True, blank=True)
    email_opt_out_source = models.CharField(max_length=40, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True, help_text=_("When the person's data was erased."))

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                name="lead_external_id_unique",
                condition=Q(external_id__isnull=False),
                violation_error_message="A lead with this external_id already exists.",
            ),
        ]
        indexes = [
            # The rep inbox: my leads in a stage, soonest deadline first. Only owned leads: most
            # leads have no owner (never MQL, or recycled), and the queries name an owner.
            models.Index(
                fields=["owner", "stage", "sla_due_at"],
                name="lead_inbox_idx",
                condition=Q(owner__isnull=False),
            ),
            # The team's unassigned MQLs (only MQLs: a recycled lead, ownerless too, stays out).
            models.Index(
                fields=["team", "stage", "sla_due_at"],
                name="lead_team_unassigned_idx",
                condition=Q(owner__isnull=True, stage="mql"),
            ),
            # The SLA sweep: only clocked stages with a deadline, so "nothing due" is cheap.
            models.Index(
                fields=["sla_due_at"],
                name="lead_sla_due_idx",
                condition=Q(stage__in=["mql", "sal"], sla_due_at__isnull=False),
            ),
            # The SLA sweep's warnings: open clocks not yet warned.
            models.Index(
                fields=["sla_warn_at"],
                name="lead_sla_warn_idx",
                condition=Q(stage__in=["mql", "sal"], sla_warn_at__isnull=False, sla_warned_at__isnull=True),
            ),
            models.Index(fields=["stage", "stage_entered_at"], name="lead_stage_idx"),
            models.Index(fields=["updated_at"], name="lead_updated_idx"),
            models.Index(fields=["source"], name="lead_source_idx"),
            # The funnel's new leads in a date range.
            models.Index(fields=["created_at"], name="lead_created_idx"),
        ]

    def __str__(self) -> str:
        return contact_label(self.first_name, self.last_name, self.email) or self.identifier

    @property
    def identifier(self) -> str:
        """The first identifier the lead has, for naming a lead with neither name nor e-mail."""
        return self.email or self.external_id or self.phone or f"#{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.identifier

    @property
    def fit_grade(self) -> str:
        return fit_grade(self.fit_score)

    def may_email(self) -> bool:
        """May anything address an e-mail to this person? Not once they opted out, were erased,
        or were merged into another lead (write to the survivor), nor without an address."""
        return bool(self.email) and not (self.email_opt_out or self.erased_at or self.merged_into_id)


class Event(models.Model):
    """A behaviour event (page view, webinar, demo request...). `event_id` deduplicates per lead."""

    # Indexed by `event_lead_type_idx`, whose first column it is: a second index on lead_id alone
    # would only cost every insert.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(max_length=100)
    occurred_at = models.DateTimeField(default=timezone.now)
    properties = models.JSONField(default=dict, blank=True)
    # Unique through a constraint rather than `unique=True`, which on PostgreSQL adds a second,
    # `varchar_pattern_ops` index for LIKE look-ups nobody makes: ten million events, 300 MB,
    # and one more random B-tree insertion per event received.
    event_id = models.CharField(max_length=255)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["lead", "type", "occurred_at"], name="event_lead_type_idx")]
        # Per lead, not across leads: the same id sent for two leads is two events.
        constraints = [models.UniqueConstraint(fields=["lead", "event_id"], name="event_lead_event_id_unique")]

    def __str__(self) -> str:
        return f"{self.type} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class ActorType(models.TextChoices):
    USER = "user", _("User")
    SYSTEM = "system", _("System")
    API = "api", _("API client")


class AppendOnlyQuerySet(models.QuerySet):
    """Bulk update and delete are refused: the audit trail is never rewritten."""

    def update(self, **kwargs):  # type: ignore[override]
        raise PermissionError("StageTransition rows are append-only and cannot be updated")

    def delete(self):  # type: ignore[override]
        raise PermissionError("StageTransition rows are append-only and cannot be deleted")

    # Internal helpers Django uses for the same purpose.
    _raw_delete = delete  # type: ignore[assignment]


class StageTransition(models.Model):
    """Append-only audit row of one stage change, with the facts at that moment."""

    # transition_lead_at_idx starts with lead_id and serves every lookup by lead.
    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="transitions", db_index=False)
    from_stage = models.CharField(max_length=20, choices=Stage.choices)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="stage_transitions",
        help_text=_("The user, or the integration token's user, who made the move."),
        db_index=False,  # transition_actor_idx, for moves by a user only
    )
    reason = models.CharField(max_length=40, blank=True)
    note = models.TextField(blank=True)
    fit_score = models.FloatField(default=0)
    behavior_score = models.FloatField(default=0)
    definition_version = models.PositiveIntegerField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The lead's owner after the move."),
        db_index=False,  # transition_owner_idx, for moves leaving an owner only
    )
    bant = models.JSONField(default=dict, blank=True)
    # Why the owner is who it is (round-robin decision, reassignment), for the audit.
    assignment = models.JSONField(default=dict, blank=True)
    # A closed deal's amount (won or lost): what the AE or the CRM reported.
    amount = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["to_stage", "at"], name="transition_to_at_idx"),
            models.Index(fields=["lead", "at"], name="transition_lead_at_idx"),
            # Look-ups by user (and Django's SET_NULL when one is deleted) name a user: the many
            # system moves (scoring, the SLA sweep's recycles) have none and stay out, one index
            # entry fewer each to write.
            models.Index(fields=["actor"], name="transition_actor_idx", condition=Q(actor__isnull=False)),
            models.Index(fields=["owner"], name="transition_owner_idx", condition=Q(owner__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.from_stage} → {self.to_stage} ({self.reason or '-'})"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("StageTransition rows are append-only and cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("StageTransition rows are append-only and cannot be deleted")


class TouchKind(models.TextChoices):
    CALL = "call", _("Call")
    EMAIL = "email", _("Email")
    MEETING = "meeting", _("Meeting")


class TouchOutcome(models.TextChoices):
    CONNECTED = "connected", _("Connected")
    NO_ANSWER = "no_answer", _("No answer")
    VOICEMAIL = "voicemail", _("Voicemail")
    BOUNCED = "bounced", _("Bounced")
    REPLIED = "replied", _("Replied")


class Touch(models.Model):
    """A rep's attempt to reach a lead: counts toward the SAL first-touch and minimum-touch clocks."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="touches")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="touches")
    kind = models.CharField(max_length=10, choices=TouchKind.choices)
    outcome = models.CharField(max_length=12, choices=TouchOutcome.choices)
    note = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = _("touches")
        indexes = [models.Index(fields=["lead", "at"], name="touch_lead_at_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_outcome_display()})"


# --- Webhooks: subscriptions, the outbox and its delivery log (`leads.webhooks` writes them) ---


class WebhookEvent(models.TextChoices):
    MQL = "lead.mql", _("Lead became MQL")
    SAL = "lead.sal", _("Lead accepted (SAL)")
    SQL = "lead.sql", _("Lead qualified (SQL)")
    RECYCLED = "lead.recycled", _("Lead recycled")
    DISQUALIFIED = "lead.disqualified", _("Lead disqualified")
    SLA_BREACHED = "sla.breached", _("SLA breached")


def new_secret() -> str:
    return secrets.token_hex(24)


class WebhookSubscription(models.Model):
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text=_('Event names, e.g. ["lead.mql", "lead.sal"].'))
    secret = models.CharField(
        max_length=128,
        default=new_secret,
        help_text=_("Shared secret for the X-LeadFlow-Signature HMAC."),
    )
    active = models.BooleanField(default=True)
    failing = models.BooleanField(
        default=False, help_text=_("Set after repeated failed deliveries; cleared by a success.")
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def clean(self) -> None:
        check_url(self.url)
        unknown = sorted(set(self.events) - set(WebhookEvent.values))
        if unknown:
            raise ValidationError({"events": f"Unknown events: {', '.join(unknown)}."})


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    GAVE_UP = "gave_up", _("Gave up after 24 hours")


class WebhookDelivery(models.Model):
    """The outbox: one row per event per subscription; its UUID is the delivery id receivers see."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker's claim on the row, so two workers never post the same delivery at once.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_pending_idx",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription.url} ({self.status})"


class WebhookAttempt(models.Model):
    """The delivery log: every POST tried, with the receiver's answer."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"


# --- API idempotency keys (`leads.idempotency`) -------------------------------------------------


class IdempotencyKey(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    body_hash = models.CharField(max_length=64)
    status_code = models.PositiveIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="unique_idempotency_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.key})"


# --- Import jobs (`leads.services.import_jobs`) -------------------------------------------------


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One upload to `POST /api/v1/import/`: its file, progress and result (the summary with
    every rejected row). A large file is imported by a Celery task; the client polls the job."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # The upload, kept under settings.IMPORT_DIR (never served) until the job is done.
    path = models.CharField(max_length=500, blank=True)
    encoding = models.CharField(max_length=40, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    rows_processed = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import {self.id} ({self.status})"


# --- API tokens (`leads.tokens`) ----------------------------------------------------------------


class ApiToken(models.Model):
    """A named API key. Only the SHA-256 of the key is stored: a leaked database or backup gives
    no usable credential, and the key itself is shown once, when it is made."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    # The key's first characters, so an owner can tell tokens apart in a list.
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


# --- The people audit trail: merges, privacy exports and erasures, consent (issue 21) ----------


class PeopleAction(models.TextChoices):
    MERGE = "merge", _("Merged a duplicate")
    PRIVACY_EXPORT = "privacy_export", _("Exported personal data")
    ERASE = "erase", _("Erased personal data")
    OPT_OUT = "opt_out", _("Opted out of e-mail")
    OPT_IN = "opt_in", _("Opted in to e-mail")


class LeadAuditEntry(models.Model):
    """Append-only record of what was done to a person's data and by whom. It names what was
    done (counts, field names, lead ids), never the personal values themselves, so it survives
    an erasure without keeping what was erased."""

    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="audit_entries")
    action = models.CharField(max_length=20, choices=PeopleAction.choices)
    # The other lead of a merge (the duplicate merged into `lead`).
    other_lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    details = models.JSONField(default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("people audit entry")
        verbose_name_plural = _("people audit entries")

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.action} @ {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("Audit entries are append-only and cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit entries are append-only and cannot be deleted")
