"""The agreement in force as one page (`/agreement/`): what a rep opens to see what was
promised. Every signed-in user reads it; nothing on it is edited here (the admin is for that).
And the feedback marketing gets under it (`/rejected/`): the MQLs sales turned down, and why."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leads import permissions
from leads.forms import REASON_LABELS
from leads.lifecycle import SLA_EXPIRED

from . import selectors

PAGE_SIZE = 50
DEFAULT_DAYS = 90
# Deals take months to close: the profile looks at a year of MQLs by default.
PROFILE_DAYS = 365


@login_required
def agreement(request: HttpRequest) -> HttpResponse:
    return render(request, "scoring/agreement.html", selectors.current_agreement())


def _reason_choices() -> list[tuple[str, Any]]:
    return [("", _("Any reason")), *REASON_LABELS.items(), (SLA_EXPIRED, _("SLA expired"))]


class RejectedFilterForm(forms.Form):
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.ChoiceField(label=_("Reason"), required=False, choices=_reason_choices)
    source = forms.CharField(label=_("Source"), required=False)
    rep = forms.ModelChoiceField(
        label=_("Rep"),
        required=False,
        queryset=get_user_model().objects.filter(groups__name=permissions.SALES_REP).order_by("username"),
    )


@login_required
def rejected(request: HttpRequest) -> HttpResponse:
    """Feedback to marketing (SPEC section 1: marketing and managers): the MQLs sales rejected,
    with reason and note, filtered by reason, source, rep and period; and the recycled pool."""
    if not permissions.sees_all_leads(request.user):
        raise PermissionDenied(_("The rejected-MQL view is for marketing and sales managers."))
    today = timezone.localdate()
    form = RejectedFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_valid():
        filters = {name: value for name, value in form.cleaned_data.items() if value}
    date_from = filters.get("date_from") or today - dt.timedelta(days=DEFAULT_DAYS)
    date_to = filters.get("date_to") or today
    qs = selectors.rejected_mqls(
        date_from=date_from,
        date_to=date_to,
        reason=filters.get("reason", ""),
        source=filters.get("source", ""),
        rep=filters["rep"].pk if "rep" in filters else None,
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "date_from": date_from,
        "date_to": date_to,
        "by_reason": selectors.rejections_by_reason(qs),
        "reason_labels": {**REASON_LABELS, SLA_EXPIRED: _("SLA expired")},
        "pool": selectors.recycled_pool(),
    }
    return render(request, "scoring/rejected.html", context)


@login_required
def won_profile(request: HttpRequest) -> HttpResponse:
    """Won deals by the attributes fit rules use, beside all MQLs of the period: which values
    win, for the marketer tuning the fit rules (marketing and managers)."""
    if not permissions.sees_all_leads(request.user):
        raise PermissionDenied(_("The won-customer profile is for marketing and sales managers."))
    today = timezone.localdate()
    form = RejectedFilterForm(request.GET or None)
    dates: dict[str, Any] = {}
    if form.is_valid():
        dates = {name: form.cleaned_data.get(name) for name in ("date_from", "date_to")}
    date_from = dates.get("date_from") or today - dt.timedelta(days=PROFILE_DAYS)
    date_to = dates.get("date_to") or today
    profile = selectors.won_profile(date_from=date_from, date_to=date_to)
    labels = {
        "industry": _("Industry"),
        "size_band": _("Company size (employees)"),
        "country": _("Country"),
        "seniority": _("Title seniority"),
        "source": _("Source"),
    }
    sections = [{"key": key, "title": labels[key], "rows": rows} for key, rows in profile.items()]
    context = {"sections": sections, "date_from": date_from, "date_to": date_to}
    return render(request, "scoring/won_profile.html", context)
