"""The manager's pages: the dashboard and this week's SLA breaches.

The dashboard page is a frame: its charts fetch the report JSON endpoints (`reports.api`) with
the browser's session, so the page and the API show the same selector's numbers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from leadflow.db_router import report_reads
from leads import permissions, selectors
from leads.models import Team

from . import selectors as report_selectors

REPORTS_API = "/api/v1/reports/"
BREACHES_PAGE_SIZE = 50
CHARTS = (
    ("funnel", "Funnel", "Leads entering each stage, and the rate to the next stage."),
    (
        "efficiency",
        "MQL → SQL efficiency",
        "Of the leads that became MQL in each period, the share that reached SAL and SQL.",
    ),
    (
        "velocity",
        "Hand-off velocity",
        "Median and 90th percentile time to accept or reject an MQL, per week, against the SLA.",
    ),
    ("rejections", "Rejections and recycling", "Why reps reject and recycle leads."),
    ("commitment", "Marketing commitment", "Qualified leads delivered against the quarter's prorated target."),
)


def _require_manager(user) -> None:
    if not permissions.is_manager(user):
        raise PermissionDenied("Only sales managers can do this.")


class DashboardFilterForm(forms.Form):
    """The report inputs of SPEC section 9; the same names go to every JSON endpoint."""

    date_from = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))
    source = forms.CharField(required=False, max_length=100)
    team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False, empty_label="All teams")
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label="All reps",
        to_field_name="username",
        label="Rep",
    )
    country = forms.CharField(required=False, max_length=2)

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
            self.add_error("date_to", "The end date must be on or after the start date.")
        if data.get("country"):
            data["country"] = data["country"].upper()
        return data


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (permissions.is_manager(user) or permissions.is_marketing(user)):
        raise PermissionDenied("The dashboard is for sales managers and marketing.")
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
    with report_reads():
        freshness = report_selectors.freshness()
    charts = [
        {
            "key": key,
            "title": title,
            "help": help_text,
            "endpoint": f"{REPORTS_API}{key}/",
            "csv": f"{REPORTS_API}{key}/?{query}&format=csv",
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
            "query": query,
            "velocity_csv": f"{REPORTS_API}velocity/?{query}&group_by=owner&format=csv",
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
