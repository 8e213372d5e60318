"""CSV export of leads in the historical import's format (SPEC section 9), streamed in chunks,
UTF-8 with a BOM, every text cell neutralised against spreadsheet formulas (reports.csv_cells)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.db.models import QuerySet

from reports.csv_cells import BOM, safe_row

from .. import lifecycle
from ..models import Lead, StageTransition
from .importer import COLUMNS, STAGE_COLUMNS

CHUNK = 2000
STAGE_TO_COLUMN: dict[str, str] = {stage: column for column, stage in STAGE_COLUMNS.items()}


def rows(queryset: QuerySet[Lead]) -> Iterator[str]:
    """The CSV text of `queryset`'s leads, header first, then CHUNK leads at a time, each chunk
    read in two queries (the leads, their stage changes). A streaming response sends each piece
    as it is made, so a large export holds neither the file nor all the leads in memory. The
    columns are those of the historical import (SPEC section 9)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return text

    buffer.write(BOM)
    writer.writerow(COLUMNS)
    yield flush()
    ids = list(queryset.order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        leads = Lead.objects.filter(pk__in=part).select_related("owner").order_by("id")
        dates: dict[int, dict[str, str]] = {}
        reasons: dict[int, str] = {}
        # Latest entry into each stage; a stage-less correction (from == to) is not an entry.
        for lead_id, to_stage, at, reason in (
            StageTransition.objects.filter(lead_id__in=part)
            .order_by("at", "id")
            .values_list("lead_id", "to_stage", "at", "reason")
        ):
            column = STAGE_TO_COLUMN.get(to_stage)
            if column:
                dates.setdefault(lead_id, {})[column] = at.isoformat()
            if to_stage in ("recycled", "disqualified") and reason:
                reasons[lead_id] = reason
        for lead in leads:
            values = {
                "external_id": lead.external_id or "",
                "email": lead.email or "",
                "phone": lead.phone,
                "social_profiles": " ".join(lead.social_profiles or []),
                "first_name": lead.first_name,
                "last_name": lead.last_name,
                "company": lead.company,
                "job_title": lead.job_title,
                "industry": lead.industry,
                "country": lead.country,
                "employees": lead.employees if lead.employees is not None else "",
                "annual_revenue": lead.annual_revenue if lead.annual_revenue is not None else "",
                "source": lead.source,
                "owner": lead.owner.username if lead.owner else "",
                "created_at": lead.created_at.isoformat(),
                "rejection_reason": "",
                **dates.get(lead.pk, {}),
            }
            reason = reasons.get(lead.pk, "")
            values["rejection_reason"] = reason if reason in lifecycle.REJECT_REASONS else ""
            writer.writerow(safe_row([values.get(column, "") for column in COLUMNS]))
        yield flush()
