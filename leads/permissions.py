"""Who may see and do what (SPEC section 1). Plain functions over users and leads.

Views, API views and the lifecycle ask these; nothing else decides access.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from .models import Lead, Stage, TeamMembership

MARKETING = "marketing"
SALES_REP = "sales_rep"
SALES_MANAGER = "sales_manager"
ROLES = (MARKETING, SALES_REP, SALES_MANAGER)

# Moves a rep makes on leads in their reach; manager and superuser make every move.
REP_MOVES = frozenset({"accept", "reject", "qualify", "recycle", "disqualify", "log_touch"})
MARKETING_MOVES = frozenset({"promote_to_mql"})
MANAGER_MOVES = REP_MOVES | frozenset({"close", "override", "reassign", "promote_to_mql"})


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
    return bool(
        user and user.is_authenticated and (user.is_superuser or has_role(user, SALES_MANAGER))
    )


def is_rep(user) -> bool:
    return has_role(user, SALES_REP)


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
    return qs.none()


def can_view_lead(user, lead: Lead) -> bool:
    if sees_all_leads(user):
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
    if is_rep(user) and move in REP_MOVES:
        return _in_rep_reach(user, lead)
    return False
