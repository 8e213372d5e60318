"""Who may see and do what (SPEC section 1). Plain functions over users and leads, and the one
DRF permission class every API view uses.

Views, API views and the lifecycle ask these; nothing else decides access.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet
from django.utils.translation import gettext, gettext_lazy
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .models import Lead, Stage, TeamMembership

MARKETING = "marketing"
SALES_REP = "sales_rep"
SALES_MANAGER = "sales_manager"
ACCOUNT_EXECUTIVE = "account_executive"
ROLES = (MARKETING, SALES_REP, SALES_MANAGER, ACCOUNT_EXECUTIVE)

# Moves a rep makes on leads in their reach; manager and superuser make every move.
REP_MOVES = frozenset({"accept", "reject", "qualify", "recycle", "disqualify", "log_touch"})
MARKETING_MOVES = frozenset({"promote_to_mql"})
MANAGER_MOVES = REP_MOVES | frozenset({"close", "override", "reassign", "promote_to_mql"})
# An AE works the SQLs handed to them: logs meetings and calls, records won or lost.
AE_MOVES = frozenset({"close", "log_touch"})
MOVES_BY_ROLE = {
    SALES_REP: REP_MOVES,
    MARKETING: MARKETING_MOVES,
    SALES_MANAGER: MANAGER_MOVES,
    ACCOUNT_EXECUTIVE: AE_MOVES,
}

# Role sets the API views' action tables are written with.
EVERY_ROLE = frozenset(ROLES)
MARKETING_AND_MANAGERS = frozenset({MARKETING, SALES_MANAGER})
MANAGERS = frozenset({SALES_MANAGER})
ROLE_NAMES = {
    MARKETING: "marketing",
    SALES_REP: "sales reps",
    SALES_MANAGER: "sales managers",
    ACCOUNT_EXECUTIVE: "account executives",
}


def _group_names(user) -> frozenset[str]:
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_leadflow_groups", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._leadflow_groups = cached
    return cached


def has_role(user, role: str) -> bool:
    return role in _group_names(user)


def is_marketing(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_superuser or has_role(user, MARKETING)))


def is_manager(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_superuser or has_role(user, SALES_MANAGER)))


def is_rep(user) -> bool:
    return has_role(user, SALES_REP)


def is_account_executive(user) -> bool:
    return has_role(user, ACCOUNT_EXECUTIVE)


def sees_all_leads(user) -> bool:
    return is_marketing(user) or is_manager(user)


def rep_team_ids(user) -> list[int]:
    cached = getattr(user, "_leadflow_team_ids", None)
    if cached is None:
        cached = list(user.team_memberships.values_list("team_id", flat=True))
        user._leadflow_team_ids = cached
    return cached


def visible_leads(user, queryset: QuerySet[Lead] | None = None) -> QuerySet[Lead]:
    """Leads this user may read: all for marketing and managers; a rep's own leads and the
    unassigned MQLs of the rep's teams; nothing for anyone else."""
    qs = Lead.objects.all() if queryset is None else queryset
    if sees_all_leads(user):
        return qs
    if is_rep(user):
        # The rep's teams as a subquery, not a list read first: one query fewer per request,
        # and a rep acting on their own lead never needs the list.
        teams = TeamMembership.objects.filter(user_id=user.pk).values("team_id")
        return qs.filter(Q(owner=user) | Q(owner__isnull=True, stage=Stage.MQL, team_id__in=teams))
    if is_account_executive(user):
        # The SQLs handed to them, and the deals they closed.
        return qs.filter(owner=user)
    return qs.none()


def can_view_lead(user, lead: Lead) -> bool:
    if sees_all_leads(user):
        return True
    if is_account_executive(user) and lead.owner_id == user.pk:
        return True
    return is_rep(user) and _in_rep_reach(user, lead)


def _in_rep_reach(user, lead: Lead) -> bool:
    if lead.owner_id == user.pk:
        return True
    return (
        lead.owner_id is None
        and lead.stage == Stage.MQL
        and lead.team_id is not None
        and lead.team_id in rep_team_ids(user)
    )


def can_move(user, lead: Lead, move: str) -> bool:
    """May `user` make `move` (a function name of leads.lifecycle) on `lead` right now?"""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if is_manager(user) and move in MANAGER_MOVES:
        return True
    if has_role(user, MARKETING) and move in MARKETING_MOVES:
        return True
    if is_rep(user) and move in REP_MOVES and _in_rep_reach(user, lead):
        return True
    if is_account_executive(user) and move in AE_MOVES:
        return lead.owner_id == user.pk
    return False


def roles_for_move(move: str) -> frozenset[str]:
    """The roles that may make `move` on some lead. An API action that makes a move lists these,
    so the API lets through exactly the roles `can_move` may then allow for the lead at hand."""
    return frozenset(role for role, moves in MOVES_BY_ROLE.items() if move in moves)


def _request_action(view: Any, request: Request) -> str:
    """The name a view's `role_actions` lists a request under: a viewset's action (`list`,
    `accept`, ...), else the HTTP method of an APIView (`get`, `post`; HEAD as `get`). OPTIONS
    is `options` everywhere, including DRF's metadata pass, which re-checks POST and PUT on a
    copy of the request while the viewset's action stays `metadata`."""
    action = getattr(view, "action", None)
    assert request.method is not None  # Django sets the method of every request it dispatches
    if request.method == "OPTIONS" or action == "metadata":
        return "options"
    if action:
        return action
    method = request.method.lower()
    return "get" if method == "head" else method


class RoleActionPermission(BasePermission):
    """Deny by default (SPEC section 1): each API view maps the actions it offers to the roles
    that may take them (`role_actions`), and an action it does not list is refused to every
    role: 403 `permission_denied`, or 401 to a caller who is not signed in. Superusers may do
    everything. A new action is refused to every role until someone decides who may take it.

    This decides what a role may do at all; which leads it may do it to stays with
    `visible_leads` (404) and `can_move` (403 for a lead out of a rep's reach)."""

    message: Any = gettext_lazy("Your role may not do this.")

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        assert request.method is not None  # Django sets the method of every request it dispatches
        method = request.method.lower()
        if method not in view.http_method_names or not hasattr(view, method):
            return True  # not an action of this view: it answers 405, there is nothing to allow
        if user.is_superuser:
            return True
        action = _request_action(view, request)
        table: Mapping[str, frozenset[str]] = getattr(view, "role_actions", {})
        allowed = table.get(action, frozenset())
        if allowed & _group_names(user):
            return True
        names = [ROLE_NAMES[role] for role in ROLES if role in allowed]
        who = ", ".join(names)
        self.message = (
            gettext("Only %(roles)s may do this (%(action)s).") % {"roles": who, "action": action}
            if who
            else gettext("No role may do this (%(action)s).") % {"action": action}
        )
        return False
