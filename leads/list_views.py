"""The lead lists of issue 25 and the account executive's page: "all leads" (search, filters,
sort, pages; the inbox in `leads.views` shares the helpers here) and "my SQLs" with each
hand-off. Reads only; moves stay in `leads.views`' actions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext_lazy as _
from django_htmx.middleware import HtmxDetails

from . import permissions, selectors
from .filters import LeadListFilter
from .forms import BANT_LABELS
from .models import Lead, Stage

LIST_PAGE_SIZE = 50
# A search counts its matches up to here ("1,000+ leads"); see selectors.SearchResults.
SEARCH_COUNT_CAP = 1000


class HtmxHttpRequest(HttpRequest):
    """The requests the views get: django_htmx's middleware sets `htmx` on every one."""

    htmx: HtmxDetails


def build_lead_filter(request: HttpRequest, *, stages: tuple[str, ...] | None = None) -> LeadListFilter:
    # A rep reads only their own leads and their teams' unassigned ones: no owner to choose, and
    # a team to choose only when they are in more than one.
    user = request.user
    without: tuple[str, ...] = ()
    if not permissions.sees_all_leads(user):
        without = ("owner",)
        if permissions.is_rep(user) and len(permissions.rep_team_ids(user)) <= 1:
            without += ("team",)
    return LeadListFilter(request.GET or None, sources=selectors.lead_sources(), stages=stages, without=without)


def page_query(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def list_response(request: HtmxHttpRequest, template: str, fragment: str, context: dict[str, Any]) -> HttpResponse:
    """The whole page, or only its results when htmx asks (the search box, a filter, a sort
    header, a page link); a history restore gets the page. The URL is the same either way, so
    caches must keep the two apart (Vary)."""
    partial = bool(request.htmx) and not request.htmx.history_restore_request and request.htmx.target == "results"
    response = render(request, fragment if partial else template, context)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


@login_required
def lead_list(request: HtmxHttpRequest) -> HttpResponse:
    """Every lead the user may read, searchable and filterable (a rep: their own and their
    team's unassigned MQLs; an AE: their deals; marketing and managers: all)."""
    user = request.user
    if not (permissions.is_rep(user) or permissions.sees_all_leads(user) or permissions.is_account_executive(user)):
        raise Http404(_("No lead list for this account"))
    lead_filter = build_lead_filter(request)
    searching = bool(lead_filter.search_text)
    leads = selectors.lead_list(user, refine=lead_filter.refine, ordering=lead_filter.ordering())
    rows_source: Any = selectors.SearchResults(leads, cap=SEARCH_COUNT_CAP) if searching else leads
    page = Paginator(rows_source, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    clocks = selectors.SlaClockReader()
    context = {
        "filter": lead_filter,
        "form": lead_filter.form,
        "page": page,
        "rows": [{"lead": lead, "sla": clocks.status(lead)} for lead in page.object_list],
        "filter_query": page_query(request),
        "sort_links": lead_filter.sort_links(request.GET),
        "refined": lead_filter.refined,
        "count_capped": searching and rows_source.capped,
        "count_cap": SEARCH_COUNT_CAP,
    }
    return list_response(request, "leads/lead_list.html", "leads/_lead_results.html", context)


def back_link(user: Any) -> dict[str, str]:
    """Where the breadcrumb leads back to: the page this role works from."""
    if permissions.is_account_executive(user) and not permissions.is_rep(user):
        return {"url": reverse("my-sqls"), "label": str(_("My SQLs"))}
    if permissions.is_rep(user) or permissions.is_manager(user):
        return {"url": reverse("inbox"), "label": str(_("Inbox"))}
    return {"url": reverse("lead-list"), "label": str(_("All leads"))}


def handoff_context(lead: Lead) -> dict[str, Any] | None:
    """The rep's hand-off of an SQL (or a deal closed from one): note, BANT and who qualified."""
    if lead.stage not in (Stage.SQL, Stage.WON, Stage.LOST):
        return None
    transition = selectors.handoffs([lead]).get(lead.pk)
    if transition is None:
        return None
    labels = dict(BANT_LABELS)
    bant = [
        {"label": labels.get(key, key), "value": item.get("value"), "note": item.get("note", "")}
        for key, item in (transition.bant or {}).items()
        if isinstance(item, dict)
    ]
    rep = transition.actor.username if transition.actor else (transition.assignment or {}).get("previous_owner")
    return {"transition": transition, "bant": bant, "rep": rep}


# --- The account executive's deals -----------------------------------------------------------


@login_required
def my_sqls(request: HttpRequest) -> HttpResponse:
    """An AE's SQLs with each hand-off (note, BANT, rep), and the deals they closed lately.
    A manager sees the page too (empty unless they own SQLs) and is pointed to all leads."""
    user = request.user
    if not (permissions.is_account_executive(user) or permissions.is_manager(user)):
        raise Http404(_("No SQLs for this account"))
    open_deals = list(selectors.my_sqls(user))
    closed = list(selectors.closed_by(user))
    notes = selectors.handoffs(open_deals + closed)
    meetings = selectors.ae_meeting_clocks(open_deals)
    return render(
        request,
        "leads/my_sqls.html",
        {
            "meeting_days": selectors.AE_MEETING_BUSINESS_DAYS,
            "rows": [
                {"lead": lead, "handoff": notes.get(lead.pk), "meeting": meetings.get(lead.pk)} for lead in open_deals
            ],
            "closed": [{"lead": lead, "handoff": notes.get(lead.pk)} for lead in closed],
        },
    )
