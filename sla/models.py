"""Service-level agreements between marketing and sales: calendars, policies, breaches."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leads.models import SlaClock, Stage

from .calendar import Calendar


def default_working_days() -> list[int]:
    return [0, 1, 2, 3, 4]  # Monday..Friday, as datetime.weekday()


class BusinessCalendar(models.Model):
    name = models.CharField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", help_text=_("IANA name, e.g. Europe/Berlin"))
    working_days = models.JSONField(default=default_working_days, help_text=_("Weekday numbers, Monday=0 … Sunday=6."))
    work_start = models.TimeField(default=dt.time(9, 0))
    work_end = models.TimeField(default=dt.time(17, 0))
    holidays = models.JSONField(default=list, blank=True, help_text=_('ISO dates, e.g. ["2026-12-25", "2027-01-01"].'))

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.timezone})"

    def clean(self) -> None:
        try:
            self.as_calendar()
        except (ValueError, TypeError, KeyError) as exc:
            raise ValidationError(str(exc)) from exc

    def as_calendar(self) -> Calendar:
        """The pure arithmetic object for this calendar."""
        return Calendar(
            tz=self.timezone,
            working_days=frozenset(int(d) for d in self.working_days),
            start=self.work_start,
            end=self.work_end,
            holidays=frozenset(dt.date.fromisoformat(str(d)) for d in self.holidays),
        )


class BreachAction(models.TextChoices):
    NOTIFY = "notify", _("Notify owner and manager only")
    REASSIGN = "reassign", _("Reassign round-robin in the team")
    RECYCLE = "recycle", _("Recycle to marketing (sla_expired)")


class SlaPolicy(models.Model):
    """One clock: which stage it runs in, how long it is in business time, and what a breach does."""

    name = models.CharField(max_length=100)
    stage = models.CharField(max_length=20, choices=[(Stage.MQL, "MQL"), (Stage.SAL, "SAL")])
    clock = models.CharField(max_length=30, choices=SlaClock.choices, unique=True)
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="policies")
    duration_hours = models.FloatField(
        help_text=_("Length of the clock in business hours (e.g. 2 business days of 8 h = 16).")
    )
    business_time = models.BooleanField(
        default=True,
        help_text=_("Count only working hours of the calendar; off = plain elapsed hours."),
    )
    warning_share = models.FloatField(default=0.75, help_text=_("Warn when this share of the clock has elapsed (0–1)."))
    breach_action = models.CharField(max_length=10, choices=BreachAction.choices, default=BreachAction.NOTIFY)
    escalate_to_manager = models.BooleanField(default=True)
    min_calls = models.PositiveIntegerField(default=0, help_text=_("Minimum-touches clock only."))
    min_emails = models.PositiveIntegerField(default=0, help_text=_("Minimum-touches clock only."))
    window_days = models.PositiveIntegerField(
        default=14, help_text=_("Minimum-touches clock: touches must fall within this many days.")
    )
    bant_required = models.PositiveSmallIntegerField(
        default=4, help_text=_("Qualify clock: how many of budget/authority/need/timeline must be yes.")
    )
    active = models.BooleanField(default=True)
    # Part of the signed agreement: bumped each time a signed change (SlaPolicyChange) applies,
    # and recorded on every breach computed under it.
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["stage", "clock"]
        verbose_name_plural = _("SLA policies")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not 0 < self.warning_share < 1:
            raise ValidationError({"warning_share": _("Must be between 0 and 1 (e.g. 0.75).")})
        if self.duration_hours is not None and self.duration_hours < 0:
            raise ValidationError({"duration_hours": _("Must not be negative.")})

    def due_from(self, start: dt.datetime) -> dt.datetime:
        """The deadline of this clock for a lead entering it at `start`."""
        return self._after(start, self.duration_hours)

    def warn_from(self, start: dt.datetime) -> dt.datetime:
        """When the warning goes out: `warning_share` of the clock after `start`."""
        return self._after(start, self.duration_hours * self.warning_share)

    def _after(self, start: dt.datetime, hours: float) -> dt.datetime:
        if not self.business_time:
            return start + dt.timedelta(hours=hours)
        return self.calendar.as_calendar().add_business_hours(start, hours)


class SlaBreach(models.Model):
    """A clock that ran out, and what the sweep did about it. One row per lead, clock and deadline."""

    # unique_breach starts with lead_id and serves every lookup by lead: one index fewer to
    # write per breach (a big sweep writes a quarter of a million).
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="sla_breaches", db_index=False)
    # No index: a handful of policies over every breach ever; the foreign key's only look-up by
    # policy is the PROTECT check when one is deleted. One index entry fewer per breach.
    policy = models.ForeignKey(SlaPolicy, on_delete=models.PROTECT, related_name="breaches", db_index=False)
    clock = models.CharField(max_length=30, choices=SlaClock.choices)
    stage = models.CharField(max_length=20, choices=Stage.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The deadline the clock missed.
    due_at = models.DateTimeField()
    # The sweep's moment: the present, or the moment a `sla_sweep --now ... --simulate` run
    # simulated.
    detected_at = models.DateTimeField(default=timezone.now)
    # The real time the row was written: differs from `detected_at` only for a simulation.
    recorded_at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=10, choices=BreachAction.choices)
    # The policy's version when the breach was recorded (null: recorded before versions).
    policy_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at"]
        verbose_name_plural = _("SLA breaches")
        constraints = [
            # The sweep's claim: a second run for the same deadline inserts nothing.
            models.UniqueConstraint(fields=["lead", "clock", "due_at"], name="unique_breach"),
        ]
        indexes = [models.Index(fields=["detected_at"], name="breach_detected_idx")]

    def __str__(self) -> str:
        return f"{self.lead_id} {self.clock} due {self.due_at:%Y-%m-%d %H:%M}"

    @property
    def simulated(self) -> bool:
        """Recorded by a simulation of a moment later than the real time of writing."""
        return self.detected_at > self.recorded_at


# The policy fields that are terms of the agreement: a change of any of them needs both signatures.
POLICY_TERM_FIELDS = (
    "name",
    "calendar_id",
    "duration_hours",
    "business_time",
    "warning_share",
    "breach_action",
    "escalate_to_manager",
    "min_calls",
    "min_emails",
    "window_days",
    "bant_required",
    "active",
)


class ChangeState(models.TextChoices):
    PENDING = "pending", _("Pending signatures")
    APPLIED = "applied", _("Applied")
    SUPERSEDED = "superseded", _("Superseded by a later proposal")


class SlaPolicyChange(models.Model):
    """A proposed new version of an SLA policy: its full terms, applied to the policy only once
    marketing and a sales manager have both signed it (SPEC sections 1 and 4). The terms never
    change after the proposal (a new proposal supersedes a pending one), so a signature is bound
    to what it signed; applied changes are the policy's version history."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="changes")
    terms = models.JSONField(help_text=_("The policy's terms as proposed (every term, not only those changed)."))
    state = models.CharField(max_length=12, choices=ChangeState.choices, default=ChangeState.PENDING)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    proposed_at = models.DateTimeField(default=timezone.now)
    marketing_signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    marketing_signed_at = models.DateTimeField(null=True, blank=True)
    sales_signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sales_signed_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-proposed_at", "-id"]
        verbose_name = _("SLA policy change")
        constraints = [
            models.UniqueConstraint(
                fields=["policy"], condition=models.Q(state="pending"), name="one_pending_change_per_policy"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} change {self.pk} ({self.state})"


# --- Business-day tables (sla/business_days.py writes them; reports do business-hours SQL on them) ---
# They began in the reports app: `db_table` keeps their tables, so moving them changed no schema.


class BusinessDay(models.Model):
    """One working interval of a business calendar, in seconds since the Unix epoch (UTC).

    `seconds_before` is the working time of the calendar before this interval starts, so the
    business time between two moments is a difference of two indexed look-ups in SQL instead of
    a walk over days in Python. Rebuilt whenever the calendar's definition changes (signature).
    """

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="+")
    signature = models.CharField(max_length=64)
    day = models.DateField()
    start_epoch = models.FloatField()
    end_epoch = models.FloatField()
    seconds_before = models.FloatField()

    class Meta:
        db_table = "reports_businessday"
        constraints = [
            models.UniqueConstraint(fields=["calendar", "day"], name="unique_business_day"),
        ]
        indexes = [
            models.Index(fields=["calendar", "start_epoch"], name="business_day_start_idx"),
        ]

    def __str__(self) -> str:
        return f"calendar {self.calendar_id}: {self.day}"


class BusinessUtcDay(models.Model):
    """One UTC day of a business calendar and the `BusinessDay` intervals that matter in it.

    `number` is a moment's epoch seconds // 86,400. `anchor_*` copies the interval in force when
    the day begins (the latest one starting at or before midnight UTC), `next_*` and `later_*`
    the ones starting inside it, in order, if any: never more than two, as working days start at
    least 23 hours apart. The reports find a moment's interval by equality on the day number (one
    hash join for a whole report instead of one index probe per moment) and then do the same
    arithmetic. Rebuilt with the `BusinessDay` rows.
    """

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="+")
    signature = models.CharField(max_length=64)
    number = models.IntegerField()
    anchor_start = models.FloatField(null=True)
    anchor_end = models.FloatField(null=True)
    anchor_before = models.FloatField(null=True)
    next_start = models.FloatField(null=True)
    next_end = models.FloatField(null=True)
    next_before = models.FloatField(null=True)
    later_start = models.FloatField(null=True)
    later_end = models.FloatField(null=True)
    later_before = models.FloatField(null=True)

    class Meta:
        db_table = "reports_businessutcday"
        constraints = [
            models.UniqueConstraint(fields=["calendar", "number"], name="unique_business_utc_day"),
        ]
        # "Is this calendar's table current?" answered from the index alone.
        indexes = [models.Index(fields=["calendar", "signature"], name="business_utc_day_sig_idx")]

    def __str__(self) -> str:
        return f"calendar {self.calendar_id}: UTC day {self.number}"
