"""Reports read the lifecycle's tables; they own marketing's commitment, the record of weekly
summaries sent and the report rollup. The business-day tables they do business-hours SQL on
belong to the calendars: `sla.models.BusinessDay`, `sla.models.BusinessUtcDay`."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class QuarterlyTarget(models.Model):
    """Qualified leads (MQLs) marketing promises sales for one quarter, per team or overall."""

    year = models.PositiveSmallIntegerField(validators=[MinValueValidator(2000), MaxValueValidator(2100)])
    quarter = models.PositiveSmallIntegerField(choices=[(1, "Q1"), (2, "Q2"), (3, "Q3"), (4, "Q4")])
    team = models.ForeignKey(
        "leads.Team",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quarterly_targets",
        help_text=_("Leave empty for a company-wide target."),
    )
    qualified_leads = models.PositiveIntegerField(
        help_text=_("How many qualified leads (MQLs) marketing promises to deliver in the quarter.")
    )

    class Meta:
        ordering = ["-year", "-quarter", "team__name"]
        constraints = [
            models.UniqueConstraint(fields=["year", "quarter", "team"], name="unique_quarter_team_target"),
        ]

    def __str__(self) -> str:
        who = self.team.name if self.team is not None else "all teams"
        return f"{self.year} Q{self.quarter} – {who}: {self.qualified_leads}"

    @property
    def starts_on(self) -> dt.date:
        return dt.date(self.year, 3 * (self.quarter - 1) + 1, 1)

    @property
    def ends_on(self) -> dt.date:
        """The quarter's last day (inclusive)."""
        if self.quarter == 4:
            return dt.date(self.year, 12, 31)
        return dt.date(self.year, 3 * self.quarter + 1, 1) - dt.timedelta(days=1)


class SummaryDelivery(models.Model):
    """A weekly summary mailed to a manager: the claim that makes the beat task safe to re-run."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    week_start = models.DateField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "week_start"], name="unique_summary_per_week"),
        ]


# --- The report rollup (reports/rollup.py builds it) ------------------------------------------


class ReportRollup(models.Model):
    """The one row saying when the report rollup was last built, and in which time zone its days
    are. The rollup is a snapshot: reports read it while it is younger than
    `REPORTS_ROLLUP_MAX_AGE` seconds, live queries otherwise."""

    built_at = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    build_seconds = models.FloatField(default=0)
    entries = models.PositiveIntegerField(default=0, help_text=_("Stage entries the rollup was built from."))
    span_bins = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            "Per velocity measure: the bins of span lengths (upper bounds, each bin's smallest and largest "
            "length) and the SLA hours the bins were cut at."
        ),
    )

    def __str__(self) -> str:
        return f"report rollup built {self.built_at:%Y-%m-%d %H:%M}" if self.built_at else "report rollup (never built)"


class RollupDay(models.Model):
    """Per local day, source and one other dimension (`kind`: all, team, owner or country, and its
    `value`), the counts the count reports add up: leads created, stage entries per funnel stage
    (every entry, not distinct leads: `RollupRepeat` holds the corrections), MQL entries and how
    many of those later reached SAL and SQL. Dimensions are the lead's at build time."""

    day = models.DateField()
    source = models.CharField(max_length=100)
    kind = models.CharField(max_length=8)
    value = models.CharField(max_length=150)
    created = models.PositiveIntegerField(default=0)
    entries = models.PositiveIntegerField(default=0)
    mql = models.PositiveIntegerField(default=0)
    sal = models.PositiveIntegerField(default=0)
    sql = models.PositiveIntegerField(default=0)
    won = models.PositiveIntegerField(default=0)
    lost = models.PositiveIntegerField(default=0)
    recycled = models.PositiveIntegerField(default=0)
    disqualified = models.PositiveIntegerField(default=0)
    mql_entries = models.PositiveIntegerField(default=0)
    mql_entries_sal = models.PositiveIntegerField(default=0)
    mql_entries_sql = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value", "day", "source"], name="rollup_day_unique"),
        ]
        indexes = [models.Index(fields=["kind", "day"], name="rollup_day_kind_day_idx")]


class RollupDimensions(models.Model):
    """The lead's dimensions a rollup row carries, as text ("" for none): team and owner ids."""

    source = models.CharField(max_length=100)
    team = models.CharField(max_length=150)
    owner = models.CharField(max_length=150)
    country = models.CharField(max_length=150)

    class Meta:
        abstract = True


class RollupRepeat(RollupDimensions):
    """A stage entry of a lead that already had an entry of the same `measure` (a funnel stage,
    `cohort` for an exact MQL entry): counting distinct leads over a range is the entries in it
    minus the repeats whose previous entry is in it too. `next_day` finds the last recycle before
    a range's end; `reached_sal`/`reached_sql` correct the cohort's counts. Dimensions copied."""

    measure = models.CharField(max_length=16)
    day = models.DateField()
    prev_day = models.DateField()
    next_day = models.DateField(null=True)
    reached_sal = models.BooleanField(default=False)
    reached_sql = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["measure", "day"], name="rollup_repeat_day_idx")]


class RollupExit(models.Model):
    """Exits (recycled, disqualified, lost) per local day, source, dimension, reason and the
    stage left: the rejections report's counts."""

    day = models.DateField()
    source = models.CharField(max_length=100)
    kind = models.CharField(max_length=8)
    value = models.CharField(max_length=150)
    reason = models.CharField(max_length=64)
    from_stage = models.CharField(max_length=20)
    to_stage = models.CharField(max_length=20)
    n = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["kind", "value", "day"], name="rollup_exit_value_idx"),
            models.Index(fields=["kind", "day"], name="rollup_exit_kind_day_idx"),
        ]


class RollupSpan(RollupDimensions):
    """One measured span of the velocity report (`measure`: decision, touch or won): its length
    `x` (business hours, or days for won), the local day and week of its start, the rep holding
    the lead after the start, the lead's dimensions, and the length's `bin` (see
    `RollupSpanPeriod`; None for a span without a length). A percentile needs the values around its
    rank: the report finds the bin holding that rank from `RollupSpanPeriod` and sorts only the
    range's spans in that bin (or, for a filtered report, all of the range's spans)."""

    measure = models.CharField(max_length=8)
    day = models.DateField()
    week = models.DateField()
    owner_key = models.IntegerField(null=True)
    x = models.FloatField(null=True)
    bin = models.SmallIntegerField(null=True)

    class Meta:
        indexes = [
            # A range's spans; with their bins and reps, for the edge days of the bins' reading.
            models.Index(fields=["measure", "day"], include=["bin", "owner_key"], name="rollup_span_day_idx"),
            # The spans of one bin in a range: overall and by week, and one rep's.
            models.Index(fields=["measure", "bin", "day"], include=["x"], name="rollup_span_bin_idx"),
            models.Index(fields=["measure", "owner_key", "bin", "day"], include=["x"], name="rollup_span_rep_idx"),
        ]


class RollupSpanPeriod(models.Model):
    """How many spans of a `measure` started up to the end of a half-week (`period`: its Monday
    for Monday–Wednesday, its Thursday for Thursday–Sunday), cumulatively, per length bin:
    `counts` holds, in bin order, the spans in that bin and the bins below it, each a fixed number
    of digits. One row per half-week from the group's first span on, for each grouping the
    unfiltered velocity report shows (`kind`): `all` (value ""), `rep` (the rep holding the lead
    after the start, by id, "" for none) and the lead dimensions it groups by (`source`, `team`,
    `owner`, `country`, as in `RollupSpan`). A range's spans per bin are two rows subtracted,
    give or take the spans of at most two days at each end, counted from `RollupSpan`."""

    measure = models.CharField(max_length=8)
    kind = models.CharField(max_length=8)
    value = models.CharField(max_length=150)
    period = models.DateField()
    counts = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["measure", "kind", "period", "value"], name="rollup_span_period_unique"),
        ]
