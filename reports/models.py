"""Reports read the lifecycle's tables; they own marketing's commitment, the record of weekly
summaries sent and the report read model. The business-day tables they do business-hours SQL on
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


# --- The report read model (reports/readmodel.py maintains it) ---------------------------------


class ReadModelState(models.Model):
    """The one row saying how far the read model has consumed the stage history and the leads.

    `transitions_upto`/`leads_upto`: every id up to it is counted (or was a gap that stayed
    empty longer than `REPORTS_GAP_SECONDS`: an id a rolled-back transaction took). Ids above
    it may be counted too (`EntryFact`/`LeadFact` say which): a transaction that took an id
    early can commit late. `gaps`: {"transitions"|"leads": {first missing id: ISO time first
    seen}}. `as_of`: every row committed before this moment is counted. Days are local days
    of `timezone`."""

    transitions_upto = models.BigIntegerField(default=0)
    leads_upto = models.BigIntegerField(default=0)
    gaps = models.JSONField(default=dict, blank=True)
    as_of = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"report read model as of {self.as_of:%Y-%m-%d %H:%M:%S}" if self.as_of else "report read model (empty)"


class FrozenDimensions(models.Model):
    """A lead's dimensions when the read model counted the row, as text ("" for none): team
    and owner ids, source, country. Frozen: a lead changing hands later does not move it."""

    day = models.DateField()
    source = models.CharField(max_length=100)
    team = models.CharField(max_length=150)
    owner = models.CharField(max_length=150)
    country = models.CharField(max_length=150)

    class Meta:
        abstract = True


class EntryFact(FrozenDimensions):
    """One consumed `StageTransition` (a reassignment too: it advances the watermark), with its
    frozen dimensions and, for an MQL entry, whether the lead has reached SAL/SQL at or after
    it (`m_sal`/`m_sql`, which later rows of the lead can turn on). A lead's rows here are what
    its repeats and cohort flags are recomputed from; reports never read this table."""

    transition_id = models.BigIntegerField(primary_key=True)
    lead_id = models.BigIntegerField()
    at = models.DateTimeField()
    from_stage = models.CharField(max_length=20)
    to_stage = models.CharField(max_length=20)
    reason = models.CharField(max_length=40)
    m_sal = models.BooleanField(default=False)
    m_sql = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["lead_id", "at"], name="entry_fact_lead_idx")]


class LeadFact(FrozenDimensions):
    """One consumed lead: its creation day and frozen dimensions (`RollupDay.created`)."""

    lead_id = models.BigIntegerField(primary_key=True)


class RollupDay(models.Model):
    """Per local day, source and one other dimension (`kind`: all, team, owner or country, and its
    `value`), the counts the count reports add up: leads created, stage entries per funnel stage
    (every entry, not distinct leads: `RollupRepeat` holds the corrections), MQL entries and how
    many of those later reached SAL and SQL. Dimensions are frozen when the row is counted."""

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
    lead_id = models.BigIntegerField(default=0, help_text="Whose repeat: a lead's are recomputed when it moves.")

    class Meta:
        indexes = [
            models.Index(fields=["measure", "day"], name="rollup_repeat_day_idx"),
            models.Index(fields=["lead_id"], name="rollup_repeat_lead_idx"),
        ]


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
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "value", "day", "source", "reason", "from_stage", "to_stage"], name="rollup_exit_unique"
            ),
        ]
