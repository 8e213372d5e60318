"""The dashboard script's words in the page's language (issue 24), passed in json_script.

`text` holds whole sentences with named placeholders (`%(rate)s`), so a translation may order
them as its language needs. `plural` holds, per sentence, one form per CLDR plural category
(what the browser's Intl.PluralRules returns: Romanian has one, few and other), each taken from
the catalogue's ngettext with a number of that category.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from leads.lifecycle.table import REASON_LABELS, SLA_EXPIRED
from leads.models import Stage

# A number in each CLDR category, for the languages of settings.LANGUAGES and most others.
CATEGORY_SAMPLES = {"zero": 0, "one": 1, "two": 2, "few": 3, "many": 1_000_000, "other": 20}


def _text() -> dict[str, str]:
    return {
        "percent": _("%(value)s %%"),
        "hours_short": _("%(value)s h"),
        "report_answered": _("the report answered %(status)s"),
        "could_not_load": _("Could not load this report: %(error)s"),
        "could_not_load_per_rep": _("Could not load the per-rep figures: %(error)s"),
        "no_stage_entries": _("No stage entries in this range."),
        "entered": _("Entered"),
        "to_next_stage": _("to next stage: %(rate)s"),
        "stage_to_next": _("%(stage)s → next %(rate)s"),
        "mql_to_sql": _("MQL → SQL"),
        "mql_to_sal": _("MQL → SAL (accepted)"),
        "cohort_share": _("Share of the period's MQL cohort (%%)"),
        "verdict_median": _("%(name)s: median %(amount)s."),
        "verdict_sla": _("%(name)s: median %(amount)s against a %(sla)s SLA."),
        "verdict_sla_rate": _("%(name)s: median %(amount)s against a %(sla)s SLA, %(rate)s within SLA."),
        "summary": _("%(name)s: %(summary)s."),
        "summary_rate": _("%(name)s: %(summary)s, %(rate)s within SLA."),
        "mql_decision": _("MQL decision"),
        "sal_first_touch": _("SAL first touch"),
        "mql_to_won": _("MQL → won: median %(amount)s."),
        "median_decision_hours": _("Median hours to accept/reject"),
        "p90": _("90th percentile"),
        "sla_line": _("SLA (%(value)s h)"),
        "business_hours": _("business hours"),
        "mql_to_decision": _("MQL → decision"),
        "sal_to_first_touch": _("SAL → first touch"),
        "median_h": _("Median (h)"),
        "p90_h": _("90th percentile (h)"),
        "sla_h": _("SLA (h)"),
        "no_decisions": _("No MQL decisions in this range."),
        "no_rep_decisions": _("No decisions by any rep in this range."),
        "rep": _("Rep"),
        "unassigned": _("unassigned"),
        "decisions": _("Decisions"),
        "within_sla": _("Within SLA"),
        "no_rejections": _("No rejections or recycling in this range."),
        "leads": _("Leads"),
        "no_commitment": _("No quarterly target or deliveries in this range."),
        "delivered_cumulative": _("Delivered (cumulative)"),
        "promised_prorated": _("Promised (prorated)"),
        "no_chart_library": _("The charting library did not load."),
    }


def _plurals() -> dict[str, Callable[[int], str]]:
    return {
        "days": lambda n: ngettext("%(count)s day", "%(count)s days", n),
        "hours": lambda n: ngettext("%(count)s hour", "%(count)s hours", n),
        "sla_days": lambda n: ngettext("%(count)s-day", "%(count)s-day", n),
        "sla_hours": lambda n: ngettext("%(count)s-hour", "%(count)s-hour", n),
        "whole_range": lambda n: ngettext(
            "Whole range: %(rate)s of %(count)s MQL reached SQL (acceptance %(acceptance)s, SAL → SQL %(sal_to_sql)s).",
            "Whole range: %(rate)s of %(count)s MQLs reached SQL "
            "(acceptance %(acceptance)s, SAL → SQL %(sal_to_sql)s).",
            n,
        ),
        "recycled_again": lambda n: ngettext(
            "%(count)s lead recycled more than once.", "%(count)s leads recycled more than once.", n
        ),
        "delivered_no_target": lambda n: ngettext(
            "%(count)s delivered; no quarterly target is set for this range (admin: quarterly targets).",
            "%(count)s delivered; no quarterly target is set for this range (admin: quarterly targets).",
            n,
        ),
        "delivered_against": lambda n: ngettext(
            "%(count)s delivered against %(promised)s promised by now.",
            "%(count)s delivered against %(promised)s promised by now.",
            n,
        ),
    }


def chart_words() -> dict[str, Any]:
    """Everything the dashboard script writes, in the active language."""
    return {
        "text": _text(),
        "plural": {
            key: {category: form(sample) for category, sample in CATEGORY_SAMPLES.items()}
            for key, form in _plurals().items()
        },
        "stages": {stage.value: str(stage.label) for stage in Stage},
        "reasons": {**{code: str(label) for code, label in REASON_LABELS.items()}, SLA_EXPIRED: _("SLA expired")},
    }
