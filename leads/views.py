"""The rep's pages: the inbox and the lead page, with their in-place (htmx) actions.

Every action calls one function of `leads.lifecycle` with `Actor.person(request.user)`; the
domain error's `.message` is what the user reads. An htmx request gets back a fragment of the
same template the full page is built from (the inbox row, or the lead page's panel); without
JavaScript the same forms post normally and redirect back with a message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sla import clocks as sla_clocks

from . import lifecycle, permissions, selectors
from .forms import (
    AwayForm,
    BantForm,
    CloseForm,
    DisqualifyForm,
    PromoteForm,
    ReassignForm,
    RecycleForm,
    RejectForm,
    TouchForm,
)
from .lifecycle import Actor, TransitionError
from .list_views import (
    HtmxHttpRequest,
    back_link,
    build_lead_filter,
    handoff_context,
    list_response,
    page_query,
)
from .models import Lead, Stage, StageTransition, Team, TeamMembership
from .templatetags.leadflow_ui import APP_MESSAGE_TAG

INBOX_PAGE_SIZE = 25


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role's landing page: reps work from the inbox, account executives from their SQLs,
    everyone else from the dashboard."""
    user = request.user
    if permissions.is_manager(user) or permissions.is_marketing(user):
        return redirect("dashboard")
    if permissions.is_rep(user):
        return redirect("inbox")
    if permissions.is_account_executive(user):
        return redirect("my-sqls")
    if user.is_staff:
        return redirect("admin:index")
    return render(request, "leads/no_role.html", status=403)


# --- Inbox -----------------------------------------------------------------------------------


@login_required
def inbox(request: HtmxHttpRequest) -> HttpResponse:
    user = request.user
    if not (permissions.is_rep(user) or permissions.sees_all_leads(user)):
        raise Http404(_("No inbox for this account"))
    lead_filter = build_lead_filter(request, stages=tuple(selectors.INBOX_STAGES))
    ordering = lead_filter.ordering()
    if ordering:
        # A chosen sort: one ordered query (the merge of index-ordered branches serves only the
        # default deadline order).
        rows_source: Any = selectors.inbox_leads(user, refine=lead_filter.refine).order_by(*ordering, "id")
    else:
        rows_source = selectors.inbox_query(user, refine=lead_filter.refine)
    page = Paginator(rows_source, INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    clocks = selectors.SlaClockReader()
    rows = [_row_context(user, lead, clocks) for lead in page.object_list]
    context = {
        "filter": lead_filter,
        "form": lead_filter.form,
        "page": page,
        "rows": rows,
        "filter_query": page_query(request),
        "sort_links": lead_filter.sort_links(request.GET),
        "refined": lead_filter.refined,
    }
    return list_response(request, "leads/inbox.html", "leads/_inbox_results.html", context)


def _row_context(user, lead: Lead, clocks: selectors.SlaClockReader, **extra: Any) -> dict[str, Any]:
    moves = lifecycle.allowed_moves(lead.stage)
    return {
        "lead": lead,
        "sla": clocks.status(lead),
        "can_accept": "accept" in moves and permissions.can_move(user, lead, "accept"),
        "can_reject": "reject" in moves and permissions.can_move(user, lead, "reject"),
        # A bound form (after a refused rejection) keeps the rep's choice; otherwise every row
        # shares one pre-rendered copy of the same fields, as a page has up to 25 of them.
        "reject_form": extra.pop("reject_form", None) or _blank_reject_form(),
        **extra,
    }


@functools.cache
def _blank_reject_form() -> dict[str, str]:
    form = RejectForm(auto_id=False)
    return {"reason": mark_safe(str(form["reason"])), "note": mark_safe(str(form["note"]))}


# --- Lead page -------------------------------------------------------------------------------


@login_required
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lead = get_object_or_404(permissions.visible_leads(request.user).select_related("owner", "team"), pk=pk)
    context = _lead_context(request, lead)
    context["back"] = back_link(request.user)
    context["handoff"] = handoff_context(lead)
    return render(request, "leads/lead_detail.html", context)


def _lead_context(
    request: HttpRequest,
    lead: Lead,
    *,
    bound: dict[str, Any] | None = None,
    error: str = "",
    notice: str = "",
) -> dict[str, Any]:
    user = request.user
    bound = bound or {}
    moves = set(lifecycle.allowed_moves(lead.stage))

    def may(move: str, *, table_move: str | None = None) -> bool:
        return (table_move or move) in moves and permissions.can_move(user, lead, move)

    can = {
        "promote": may("promote_to_mql"),
        "accept": may("accept"),
        "reject": may("reject"),
        "qualify": may("qualify"),
        "recycle": lead.stage == Stage.SAL and may("recycle"),
        "disqualify": lead.stage == Stage.SAL and may("disqualify"),
        "close": may("close"),
        "log_touch": lead.stage in (Stage.MQL, Stage.SAL, Stage.SQL) and permissions.can_move(user, lead, "log_touch"),
        "reassign": lead.stage in (Stage.MQL, Stage.SAL) and permissions.can_move(user, lead, "reassign"),
    }
    timeline, events_omitted = selectors.lead_timeline(lead)
    explanation, explanation_template = _explanation(lead)
    return {
        "lead": lead,
        "sla": selectors.SlaClockReader().status(lead),
        "can": can,
        "any_action": any(can.values()),
        "missing_touches": sla_clocks.missing_touches(lead) if lead.stage in (Stage.MQL, Stage.SAL) else [],
        "cadence": sla_clocks.cadence(lead),
        "bant_required": sla_clocks.bant_required() if can["qualify"] else None,
        "touch_form": bound.get("touch") or TouchForm(auto_id="touch-%s"),
        "bant_form": bound.get("bant") or BantForm(auto_id="bant-%s"),
        "reject_form": bound.get("reject") or RejectForm(auto_id="reject-%s"),
        "recycle_form": bound.get("recycle") or RecycleForm(auto_id="recycle-%s"),
        "disqualify_form": bound.get("disqualify") or DisqualifyForm(auto_id="disqualify-%s"),
        "close_form": bound.get("close") or CloseForm(auto_id="close-%s"),
        "promote_form": bound.get("promote") or PromoteForm(auto_id="promote-%s"),
        "reassign_form": (bound.get("reassign") or ReassignForm(team_id=lead.team_id, auto_id="reassign-%s"))
        if can["reassign"]
        else None,
        "timeline": timeline,
        "events_omitted": events_omitted,
        "explanation": explanation,
        "explanation_template": explanation_template,
        "error": error,
        "notice": notice,
    }


def _explanation(lead: Lead) -> tuple[dict[str, Any] | None, bool]:
    """The scoring app's explanation and whether its partial template is there to show it.

    Without either (a site running leads without scoring) the page shows a plain fit/behavior
    summary: an optional dependency, not a cycle, hence the import here.
    """
    try:
        from scoring.services import explain_lead
    except ImportError:
        return None, False
    explanation = _past_mql(explain_lead(lead), lead)
    try:
        get_template("scoring/_explanation.html")
    except TemplateDoesNotExist:
        return explanation, False
    return explanation, True


def _past_mql(explanation: dict[str, Any], lead: Lead) -> dict[str, Any]:
    """A lead past MQL is not "not qualified": its score is for reference only. Without this the
    page said "Not qualified … already at stage 'sal'", which reads like something that happened."""
    if lead.stage in lifecycle.PROMOTABLE_STAGES:
        return explanation
    # The engine's line (scoring.engine.WHY_NOT_STAGE) as scoring.services put it in the page's
    # language: the same msgid, so the same words.
    stage_line = _("The lead is already at stage '%(stage)s'.") % {"stage": explanation.get("stage", lead.stage)}
    return {
        **explanation,
        "past_mql": True,
        "why_not": [line for line in explanation.get("why_not", []) if str(line) != stage_line],
    }


# --- Actions ---------------------------------------------------------------------------------


def _actionable_lead(request: HttpRequest, pk: int) -> tuple[Lead, str]:
    """The lead an action targets, and a message if the user has lost it since the page loaded.

    A lead the user never had in reach answers 404, as on the lead page; one that was in their
    reach (their team's, or once theirs) but was taken by someone else in the meantime is
    described in words, so the rep understands why the button did nothing.
    """
    user = request.user
    lead = Lead.objects.select_related("owner", "team").filter(pk=pk).first()
    if lead is None:
        raise Http404(_("No such lead"))
    if permissions.can_view_lead(user, lead):
        return lead, ""
    # Once theirs, or once an unassigned MQL of their team (so it sat in their inbox).
    was_in_reach = permissions.is_rep(user) and (
        StageTransition.objects.filter(lead=lead)
        .filter(
            Q(owner=user) | Q(to_stage=Stage.MQL, owner__isnull=True, lead__team_id__in=permissions.rep_team_ids(user))
        )
        .exists()
    )
    if not was_in_reach:
        raise Http404(_("No such lead"))
    if lead.stage == Stage.SAL and lead.owner:
        return lead, _("%(user)s accepted this lead first; it is no longer in your inbox.") % {
            "user": lead.owner.username
        }
    if lead.owner:
        return lead, _("This lead now belongs to %(user)s; it is no longer in your inbox.") % {
            "user": lead.owner.username
        }
    return lead, _("This lead is no longer in your inbox: it is now %(stage)s.") % {"stage": lead.get_stage_display()}


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def _perform(
    request: HtmxHttpRequest,
    pk: int,
    *,
    form_key: str | None,
    form: Any = None,
    action: Callable[[Lead, Actor, Any], Any],
    done: Callable[[Lead], str],
) -> HttpResponse:
    """Shared shape of every action: validate, call the transition, answer in place."""
    lead, lost = _actionable_lead(request, pk)
    surface = "row" if request.POST.get("surface") == "row" else "panel"
    if lost:
        return _answer(request, lead, surface, error=lost, status=409, lost=True)
    if form is not None and not form.is_valid():
        message = _form_message(form)
        assert form_key is not None  # every action with a form names its key
        return _answer(request, lead, surface, error=message, status=400, bound={form_key: form})
    try:
        action(lead, Actor.person(request.user), form)
    except TransitionError as exc:
        lead.refresh_from_db()
        return _answer(
            request,
            lead,
            surface,
            error=exc.message,
            status=lifecycle.http_status(exc),
            bound={form_key: form} if form_key else None,
        )
    lead.refresh_from_db()
    return _answer(request, lead, surface, notice=done(lead))


def _form_message(form: Any) -> str:
    parts = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = (field.label or name.replace("_", " ").capitalize()) if field else ""
        text = " ".join(str(e) for e in errors)
        parts.append(f"{label}: {text}" if label else text)
    return " ".join(parts)


def _answer(
    request: HtmxHttpRequest,
    lead: Lead,
    surface: str,
    *,
    error: str = "",
    notice: str = "",
    status: int = 200,
    bound: dict[str, Any] | None = None,
    lost: bool = False,
) -> HttpResponse:
    user = request.user
    visible = permissions.can_view_lead(user, lead)
    if not request.htmx:
        if error:
            messages.error(request, error, extra_tags=APP_MESSAGE_TAG)
        elif notice:
            messages.success(request, notice, extra_tags=APP_MESSAGE_TAG)
        default = reverse("lead-detail", args=[lead.pk]) if visible else reverse("inbox")
        return redirect(_safe_next(request, default))
    response = _fragment(
        request, lead, surface, error=error, notice=notice, status=status, bound=bound, lost=lost, visible=visible
    )
    # Tells the page's script that a 4xx answer is a fragment to show in place (see leadflow.js).
    response["X-LeadFlow-Fragment"] = "1"
    return response


def _fragment(
    request: HttpRequest,
    lead: Lead,
    surface: str,
    *,
    error: str,
    notice: str,
    status: int,
    bound: dict[str, Any] | None,
    lost: bool,
    visible: bool,
) -> HttpResponse:
    user = request.user
    if surface == "row":
        context = _row_context(
            user,
            lead,
            selectors.SlaClockReader(),
            error=error,
            notice=notice,
            gone=not visible or lead.stage not in selectors.INBOX_STAGES,
            reject_form=(bound or {}).get("reject"),
        )
        if lost:
            context.update(can_accept=False, can_reject=False)
        return render(request, "leads/_inbox_row.html", context, status=status)
    if not visible:
        return render(
            request,
            "leads/_lead_gone.html",
            {"lead": lead, "error": error, "notice": notice},
            status=status,
        )
    context = _lead_context(request, lead, bound=bound, error=error, notice=notice)
    return render(request, "leads/_lead_panel.html", context, status=status)


@login_required
@require_POST
def accept(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _perform(
        request,
        pk,
        form_key=None,
        action=lambda lead, actor, _form: lifecycle.accept(lead, actor=actor),
        done=lambda lead: _("Accepted: the lead is now a SAL. Make the first touch."),
    )


@login_required
@require_POST
def promote(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    form = PromoteForm(request.POST, auto_id="promote-%s")
    return _perform(
        request,
        pk,
        form_key="promote",
        form=form,
        action=lambda lead, actor, f: lifecycle.promote_to_mql(
            lead, actor=actor, reason="manual", note=f.cleaned_data["note"]
        ),
        done=lambda lead: (
            _("Promoted to MQL and assigned to %(user)s.") % {"user": lead.owner.username}
            if lead.owner
            else _("Promoted to MQL; no rep was available, so it waits for the team.")
        ),
    )


@login_required
@require_POST
def reject(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    form = RejectForm(request.POST)
    return _perform(
        request,
        pk,
        form_key="reject",
        form=form,
        action=lambda lead, actor, f: lifecycle.reject(
            lead, actor=actor, reason=f.cleaned_data["reason"], note=f.cleaned_data["note"]
        ),
        done=lambda lead: _("Rejected: the lead is now %(stage)s.") % {"stage": lead.get_stage_display().lower()},
    )


@login_required
@require_POST
def recycle(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    form = RecycleForm(request.POST)
    return _perform(
        request,
        pk,
        form_key="recycle",
        form=form,
        action=lambda lead, actor, f: lifecycle.recycle(
            lead, actor=actor, reason=f.cleaned_data["reason"], note=f.cleaned_data["note"]
        ),
        done=lambda lead: _("Recycled: the lead is back with marketing."),
    )


@login_required
@require_POST
def disqualify(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    form = DisqualifyForm(request.POST)
    return _perform(
        request,
        pk,
        form_key="disqualify",
        form=form,
        action=lambda lead, actor, f: lifecycle.disqualify(
            lead, actor=actor, reason=f.cleaned_data["reason"], note=f.cleaned_data["note"]
        ),
        done=lambda lead: _("Disqualified."),
    )


@login_required
@require_POST
def qualify(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    form = BantForm(request.POST, auto_id="bant-%s")
    return _perform(
        request,
        pk,
        form_key="bant",
        form=form,
        action=lambda lead, actor, f: lifecycle.qualify(lead, actor=actor, bant=f.bant(), note=f.cleaned_data["note"]),
        done=lambda lead: _("Qualified: the lead is now a SQL."),
    )


@login_required
@require_POST
def close(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    form = CloseForm(request.POST, auto_id="close-%s")
    return _perform(
        request,
        pk,
        form_key="close",
        form=form,
        action=lambda lead, actor, f: lifecycle.close(
            lead,
            actor=actor,
            outcome=f.cleaned_data["outcome"],
            note=f.cleaned_data["note"],
            amount=f.cleaned_data["amount"],
            reason=f.cleaned_data["reason"],
        ),
        done=lambda lead: _("Closed as %(stage)s.") % {"stage": lead.get_stage_display().lower()},
    )


@login_required
@require_POST
def log_touch(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    form = TouchForm(request.POST, auto_id="touch-%s")

    def done(lead: Lead) -> str:
        touch = lead.touches.order_by("-at", "-id").first()
        assert touch is not None  # lifecycle.log_touch has just written it
        return _("Logged: %(kind)s, %(outcome)s.") % {
            "kind": touch.get_kind_display().lower(),
            "outcome": touch.get_outcome_display().lower(),
        }

    return _perform(
        request,
        pk,
        form_key="touch",
        form=form,
        action=lambda lead, actor, f: lifecycle.log_touch(
            lead,
            actor=actor,
            kind=f.cleaned_data["kind"],
            outcome=f.cleaned_data["outcome"],
            note=f.cleaned_data["note"],
        ),
        done=done,
    )


@login_required
@require_POST
def reassign(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    lead = get_object_or_404(permissions.visible_leads(request.user), pk=pk)
    form = ReassignForm(request.POST, team_id=lead.team_id, auto_id="reassign-%s")
    return _perform(
        request,
        pk,
        form_key="reassign",
        form=form,
        action=lambda lead, actor, f: lifecycle.reassign(
            lead, actor=actor, owner=f.cleaned_data["owner"], note=f.cleaned_data["note"]
        ),
        done=lambda lead: (
            _("Reassigned to %(user)s.") % {"user": lead.owner.username}
            if lead.owner
            else _("No rep available in the team: the lead is unassigned for the team to pick up.")
        ),
    )


# --- The team page: who round-robin skips ----------------------------------------------------


def _require_manager(user: Any) -> None:
    if not permissions.is_manager(user):
        raise PermissionDenied(_("Only sales managers can do this."))


@login_required
def team(request: HttpRequest) -> HttpResponse:
    """The reps of every team and whether round-robin skips them (away)."""
    _require_manager(request.user)
    teams = Team.objects.prefetch_related("memberships__user").select_related("manager")
    return render(request, "leads/team.html", {"teams": teams})


@login_required
@require_POST
def set_away(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    _require_manager(request.user)
    membership = get_object_or_404(TeamMembership.objects.select_related("user", "team"), pk=pk)
    form = AwayForm(request.POST)
    error = ""
    if form.is_valid():
        membership.is_away = form.cleaned_data["is_away"]
        membership.save(update_fields=["is_away"])
        notice = (
            _("%(user)s is away: new MQLs in %(team)s skip them.")
            % {"user": membership.user.username, "team": membership.team.name}
            if membership.is_away
            else _("%(user)s is available again for %(team)s.")
            % {"user": membership.user.username, "team": membership.team.name}
        )
    else:
        notice = ""
        error = _("Choose away or available.")
    if request.htmx:
        response = render(
            request,
            "leads/_member_row.html",
            {"membership": membership, "notice": notice, "error": error},
            status=400 if error else 200,
        )
        response["X-LeadFlow-Fragment"] = "1"
        return response
    if error:
        messages.error(request, error, extra_tags=APP_MESSAGE_TAG)
    else:
        messages.success(request, notice, extra_tags=APP_MESSAGE_TAG)
    return redirect("team")
