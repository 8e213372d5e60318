"""The manager's pages: the dashboard and this week's SLA breaches.

The dashboard page is a frame: its charts fetch the report JSON endpoints (`reports.api`) with
the browser's session, so the page and the API show the same selector's numbers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from leadflow.db_router import report_reads
from leads import permissions, selectors
from leads.models import Team

from . import productivity
from . import selectors as report_selectors
from .chart_words import chart_words

REPORTS_API = "/api/v1/reports/"
BREACHES_PAGE_SIZE = 50
CHARTS = (
    ("funnel", _("Funnel"), _("Leads entering each stage, and the rate to the next stage.")),
    (
        "efficiency",
        _("MQL → SQL efficiency"),
        _("Of the leads that became MQL in each period, the share that reached SAL and SQL."),
    ),
    (
        "velocity",
        _("Hand-off velocity"),
        _("Median and 90th percentile time to accept or reject an MQL, per week, against the SLA."),
    ),
    ("rejections", _("Rejections and recycling"), _("Why reps reject and recycle leads.")),
    ("commitment", _("Marketing commitment"), _("Qualified leads delivered against the quarter's prorated target.")),
)


def _require_manager(user) -> None:
    if not permissions.is_manager(user):
        raise PermissionDenied(_("Only sales managers can do this."))


class DashboardFilterForm(forms.Form):
    """The report inputs of SPEC section 9; the same names go to every JSON endpoint."""

    date_from = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))
    source = forms.CharField(label=_("Source"), required=False, max_length=100)
    team = forms.ModelChoiceField(
        label=_("Team"), queryset=Team.objects.all(), required=False, empty_label=_("All teams")
    )
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label=_("All reps"),
        to_field_name="username",
        label=_("Rep"),
    )
    country = forms.CharField(label=_("Country"), required=False, max_length=2)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)  # declared above
        owner.queryset = get_user_model().objects.filter(groups__name=permissions.SALES_REP).order_by("username")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date must be on or after the start date."))
        if data.get("country"):
            data["country"] = data["country"].upper()
        return data


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (permissions.is_manager(user) or permissions.is_marketing(user)):
        raise PermissionDenied(_("The dashboard is for sales managers and marketing."))
    start, end = report_selectors.default_range()
    data = request.GET.copy()
    data.setdefault("date_from", start.isoformat())
    data.setdefault("date_to", end.isoformat())
    form = DashboardFilterForm(data)
    params: dict[str, str] = {"from": start.isoformat(), "to": end.isoformat()}
    if form.is_valid():
        cleaned = form.cleaned_data
        params = {"from": cleaned["date_from"].isoformat(), "to": cleaned["date_to"].isoformat()}
        for name in ("source", "country"):
            if cleaned.get(name):
                params[name] = cleaned[name]
        if cleaned.get("team"):
            params["team"] = str(cleaned["team"].pk)
        if cleaned.get("owner"):
            params["owner"] = cleaned["owner"].username
    query = urlencode(params)
    language = translation.get_language() or settings.LANGUAGE_CODE
    period_from, period_to = dt.date.fromisoformat(params["from"]), dt.date.fromisoformat(params["to"])
    period_team = int(params["team"]) if "team" in params else None
    with report_reads():
        freshness = report_selectors.freshness()
    charts = [
        {
            "key": key,
            "title": title,
            "help": help_text,
            "endpoint": f"{REPORTS_API}{key}/",
            # The CSV's headers in the page's language (reports.export).
            "csv": f"{REPORTS_API}{key}/?{query}&lang={language}&format=csv",
        }
        for key, title, help_text in CHARTS
    ]
    return render(
        request,
        "reports/dashboard.html",
        {
            "form": form,
            "charts": charts,
            "params": params,
            "period_from": period_from,
            "period_to": period_to,
            "chart_words": chart_words(),
            "query": query,
            "velocity_csv": f"{REPORTS_API}velocity/?{query}&group_by=owner&lang={language}&format=csv",
            "productivity": productivity.rep_productivity(
                date_from=period_from, date_to=period_to, team_id=period_team
            ),
            "executives": productivity.executive_outcomes(
                date_from=period_from, date_to=period_to, team_id=period_team
            ),
            "freshness": freshness,
        },
    )


@login_required
def breaches(request: HttpRequest) -> HttpResponse:
    """Every SLA breach of the last seven days, newest first, with what the sweep did about it."""
    _require_manager(request.user)
    since = selectors.breach_window_start()
    qs = selectors.breaches_since(since)
    page = Paginator(qs, BREACHES_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "reports/breaches.html", {"page": page, "since": since})
