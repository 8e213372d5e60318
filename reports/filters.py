"""What every report is asked: a date range, filters on the lead, and an optional grouping.

The API, the dashboard, the CSV export, the weekly email and the rollup all describe a report
with these, so one class says what "filtered by team" means everywhere. No models are read here:
the filters become `Q` objects on the lead and the dates become moments in the site's time zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Q
from django.utils import timezone

# A report's `group_by` and the lead field it groups on.
GROUP_FIELDS = {
    "source": "source",
    "owner": "owner__username",
    "country": "country",
    "team": "team__name",
}
DEFAULT_RANGE_DAYS = 90


@dataclass(frozen=True)
class ReportFilters:
    """The filters of every report; empty means "all". `team` is a team id, `owner` a username."""

    source: str = ""
    team: int | None = None
    owner: str = ""
    country: str = ""

    def lead_q(self, prefix: str = "") -> Q:
        """The filters on the lead, reached through `prefix` ("lead__" from a stage entry)."""
        q = Q()
        if self.source:
            q &= Q(**{f"{prefix}source": self.source})
        if self.team is not None:
            q &= Q(**{f"{prefix}team_id": self.team})
        if self.owner:
            q &= Q(**{f"{prefix}owner__username": self.owner})
        if self.country:
            q &= Q(**{f"{prefix}country": self.country.upper()})
        return q

    def echo(self, *, date_from: dt.date, date_to: dt.date, group_by: str | None) -> dict[str, Any]:
        """The report's question, repeated in its answer (SPEC section 9's `filters`)."""
        data: dict[str, Any] = {"from": date_from.isoformat(), "to": date_to.isoformat()}
        data.update(asdict(self))
        data["group_by"] = group_by
        return data


def default_range(*, date_to: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The range a report covers when none is given: the 90 days ending today (or `date_to`)."""
    end = date_to or timezone.localdate()
    return end - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1), end


def bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The range's first moment and the moment after its last day, in the site's time zone."""
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def group_field(group_by: str | None) -> str | None:
    """The lead field of a `group_by`; a ValueError (a 400 at the API) for an unknown one."""
    if group_by is None:
        return None
    if group_by not in GROUP_FIELDS:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_FIELDS)}")
    return GROUP_FIELDS[group_by]


def group_key(value: Any) -> str:
    """A group's value as the reports key it: text, "" for none."""
    return "" if value is None else str(value)
