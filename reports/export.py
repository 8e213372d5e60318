"""CSV versions of the report JSON: one flat table per report, a `group` column when grouped."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from rest_framework.renderers import BaseRenderer

from .csv_cells import BOM, safe_row

STAT_FIELDS = ("median", "p90", "count", "sla_hours", "within_sla_rate")
VELOCITY_MEASURES = (("mql_decision", "hours"), ("sal_first_touch", "hours"), ("mql_to_won", "days"))


def _funnel(data: dict, key: str) -> Iterable[list[Any]]:
    for row in data["stages"]:
        yield [key, row["stage"], row["entered"], row["to_next_rate"]]


def _efficiency(data: dict, key: str) -> Iterable[list[Any]]:
    yield [key] + [
        data[name] for name in ("mql", "sal", "sql", "mql_to_sal_rate", "sal_to_sql_rate", "mql_to_sql_rate")
    ]


def _velocity_block(scope: str, key: str, data: dict) -> Iterable[list[Any]]:
    for measure, unit in VELOCITY_MEASURES:
        stats = data[measure]
        yield [
            scope,
            key,
            measure,
            unit,
            stats.get(f"median_{unit}"),
            stats.get(f"p90_{unit}"),
            stats["count"],
            stats.get("sla_hours"),
            stats.get("within_sla_rate"),
        ]


def _velocity(data: dict) -> Iterable[list[Any]]:
    yield from _velocity_block("total", "", data)
    for row in data["by_owner"]:
        yield from _velocity_block("owner", row["owner"] or "", row)
    for row in data["by_week"]:
        yield from _velocity_block("week", row["week"], row)
    for row in data.get("groups", []):
        yield from _velocity_block("group", row["key"], row)


def _rejections(data: dict, key: str) -> Iterable[list[Any]]:
    for row in data["by_reason"]:
        yield [key, row["reason"], row["stage"], row["to_stage"], row["count"]]
    yield [key, "recycled_more_than_once", "", "", data["recycled_more_than_once"]]


def _commitment(data: dict) -> Iterable[list[Any]]:
    for row in data["weeks"]:
        yield [row["week"], row["delivered"], row["target"], row["cumulative_delivered"], row["cumulative_target"]]


def _sources(data: dict, key: str) -> Iterable[list[Any]]:
    for row in data["sources"]:
        yield [key, row["source"], row["mql"], row["sql"], row["mql_to_sql_rate"]]


GROUPED = {
    "funnel": (["group", "stage", "entered", "to_next_rate"], _funnel),
    "efficiency": (
        ["group", "mql", "sal", "sql", "mql_to_sal_rate", "sal_to_sql_rate", "mql_to_sql_rate"],
        _efficiency,
    ),
    "rejections": (["group", "reason", "stage", "to_stage", "count"], _rejections),
    "sources": (["group", "source", "mql", "sql", "mql_to_sql_rate"], _sources),
}
FLAT = {
    "velocity": (
        ["scope", "key", "measure", "unit", "median", "p90", "count", "sla_hours", "within_sla_rate"],
        _velocity,
    ),
    "commitment": (["week", "delivered", "target", "cumulative_delivered", "cumulative_target"], _commitment),
}


# Column headers in words (issue 24). English keeps the field names, which scripts and the
# tests read; a page in Spanish or Romanian (or `?lang=es`) downloads headers a person reads.
COLUMN_LABELS = {
    "group": _("Group"),
    "stage": _("Stage"),
    "entered": _("Entered"),
    "to_next_rate": _("Rate to next stage"),
    "mql": _("MQLs"),
    "sal": _("SALs"),
    "sql": _("SQLs"),
    "mql_to_sal_rate": _("MQL → SAL rate"),
    "sal_to_sql_rate": _("SAL → SQL rate"),
    "mql_to_sql_rate": _("MQL → SQL rate"),
    "reason": _("Reason"),
    "to_stage": _("To stage"),
    "count": _("Count"),
    "source": _("Source"),
    "scope": _("Scope"),
    "key": _("Key"),
    "measure": _("Measure"),
    "unit": _("Unit"),
    "median": _("Median"),
    "p90": _("90th percentile"),
    "sla_hours": _("SLA hours"),
    "within_sla_rate": _("Within SLA rate"),
    "week": _("Week"),
    "delivered": _("Delivered"),
    "target": _("Target"),
    "cumulative_delivered": _("Cumulative delivered"),
    "cumulative_target": _("Cumulative target"),
    "field": _("Field"),
    "error": _("Error"),
}


def _header(columns: list[str]) -> list[str]:
    if (translation.get_language() or "en").split("-")[0] == "en":
        return columns
    return [str(COLUMN_LABELS.get(column, column)) for column in columns]


def csv_language(request: Any) -> str | None:
    """`?lang=xx` when it names one of the product's languages, else None (the request's own)."""
    wanted = getattr(request, "GET", {}).get("lang", "") if request is not None else ""
    return wanted if wanted in {code for code, _name in settings.LANGUAGES} else None


def report_csv(name: str, data: dict) -> str:
    """The report `name`'s JSON as CSV text; grouped rows follow the total (group empty). UTF-8
    with a BOM; text cells that a spreadsheet would run as a formula (a source or owner named
    "=HYPERLINK(...)") are neutralised (reports.csv_cells)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    if name in GROUPED:
        header, rows = GROUPED[name]
        writer.writerow(_header(header))
        writer.writerows(safe_row(row) for row in rows(data, ""))
        for group in data.get("groups", []):
            writer.writerows(safe_row(row) for row in rows(group, group["key"]))
    else:
        header, flat = FLAT[name]
        writer.writerow(_header(header))
        writer.writerows(safe_row(row) for row in flat(data))
    return out.getvalue()


def errors_csv(data: dict) -> str:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow(_header(["field", "error"]))
    # The API's error body names the fields under "fields"; anything else is listed as it is.
    items = data["fields"].items() if isinstance(data.get("fields"), dict) else data.items()
    for field, messages in items:
        for message in messages if isinstance(messages, list) else [messages]:
            writer.writerow(safe_row([field, str(message)]))
    return out.getvalue()


class ReportCSVRenderer(BaseRenderer):
    """`?format=csv` on any report endpoint; the view names the report."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> str:
        context = renderer_context or {}
        response = context.get("response")
        view = context.get("view")
        language = csv_language(context.get("request")) or translation.get_language() or settings.LANGUAGE_CODE
        with translation.override(language):
            if response is not None and response.status_code >= 400 or view is None:
                return errors_csv(data if isinstance(data, dict) else {"detail": data})
            if response is not None:
                response["Content-Disposition"] = f'attachment; filename="{view.report}.csv"'
            return report_csv(view.report, data)
