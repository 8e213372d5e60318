"""Who gets a new MQL: round-robin among the active reps of the team that owns the territory.

Fair under concurrency: inside the caller's transaction the team row is locked
(``select_for_update``; SQLite's IMMEDIATE transactions serialise writers the same way), so the
team's assignments happen one after another in commit order. Each claim stamps the rep's
`last_assigned_at` strictly after every stamp in the team (clocks of different machines may
disagree), and the claim itself is a compare-and-set on the value read, so even without the lock
two MQLs never both land on the same rep because of a race.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection
from django.db.models import F, Max, QuerySet
from django.utils import timezone

from .models import Lead, Team, TeamMembership
from .permissions import ACCOUNT_EXECUTIVE

MAX_CLAIM_ATTEMPTS = 20


def team_for_country(country: str, *, teams: list[Team] | None = None) -> Team | None:
    """The team whose territories include `country`, else the fallback team. `teams` (all
    teams, in their default order) saves the query when many leads are placed at once."""
    country = (country or "").upper()
    teams = list(Team.objects.all()) if teams is None else teams
    for team in teams:
        if country and country in {str(code).upper() for code in team.territories or []}:
            return team
    return next((team for team in teams if team.is_fallback), None)


def _sellers(team: Team) -> QuerySet[TeamMembership]:
    """The team's reps: account executives are members too, but MQLs never go to them."""
    return TeamMembership.objects.filter(team=team).exclude(user__groups__name=ACCOUNT_EXECUTIVE)


def _closers(team: Team) -> QuerySet[TeamMembership]:
    """The team's account executives, who receive its SQLs."""
    return TeamMembership.objects.filter(team=team, user__groups__name=ACCOUNT_EXECUTIVE)


def assign_round_robin(lead: Lead, *, exclude_user_id: int | None = None) -> tuple[Team | None, Any, dict[str, Any]]:
    """Pick (team, rep, decision) for `lead`. The decision dict is stored on the transition row."""
    team = lead.team if lead.team_id else team_for_country(lead.country)
    if team is None:
        return None, None, {"method": "round_robin", "result": "no team for country", "country": lead.country}
    user, decision = _claim_next(team, _sellers(team), exclude_user_id=exclude_user_id, method="round_robin")
    return team, user, decision


def assign_account_executive(lead: Lead) -> tuple[Team | None, Any, dict[str, Any]]:
    """Pick (team, AE, decision) for a lead entering SQL: round-robin among the available account
    executives of the lead's team, as MQLs go round the reps (SPEC section 2)."""
    team = lead.team if lead.team_id else team_for_country(lead.country)
    if team is None:
        return None, None, {"method": "ae_round_robin", "result": "no team for country", "country": lead.country}
    user, decision = _claim_next(team, _closers(team), exclude_user_id=None, method="ae_round_robin")
    return team, user, decision


def _claim_next(
    team: Team, members: QuerySet[TeamMembership], *, exclude_user_id: int | None, method: str
) -> tuple[Any, dict[str, Any]]:
    """The member of `members` assigned longest ago (away and inactive ones skipped), claimed
    by a compare-and-set of their `last_assigned_at`; (None, why) when nobody is available."""
    if connection.in_atomic_block:
        # Serialise this team's assignments until the caller's transaction commits.
        Team.objects.select_for_update().filter(pk=team.pk).values_list("pk", flat=True).first()
    for _attempt in range(MAX_CLAIM_ATTEMPTS):
        candidates = members.filter(is_away=False, user__is_active=True)
        if exclude_user_id is not None:  # `user_id` is never NULL: excluding None excluded no one
            candidates = candidates.exclude(user_id=exclude_user_id)
        membership = (
            candidates.select_related("user").order_by(F("last_assigned_at").asc(nulls_first=True), "id").first()
        )
        if membership is None:
            return None, {
                "method": method,
                "team": team.name,
                "result": "no available rep (all away or inactive); left unassigned for the team"
                if method == "round_robin"
                else "no available account executive; the SQL stays with its rep",
            }
        latest = TeamMembership.objects.filter(team=team).aggregate(latest=Max("last_assigned_at"))["latest"]
        now = timezone.now()
        if latest is not None and now <= latest:
            now = latest + dt.timedelta(microseconds=1)
        # Claim: only succeeds if nobody else assigned to this rep since we read the row.
        claimed = (
            TeamMembership.objects.filter(pk=membership.pk, last_assigned_at=membership.last_assigned_at).update(
                last_assigned_at=now
            )
            if membership.last_assigned_at is not None
            else (
                TeamMembership.objects.filter(pk=membership.pk, last_assigned_at__isnull=True).update(
                    last_assigned_at=now
                )
            )
        )
        if claimed:
            skipped = list(members.filter(is_away=True).order_by("id").values_list("user__username", flat=True))
            return membership.user, {
                "method": method,
                "team": team.name,
                "owner": membership.user.username,
                "skipped_away": skipped,
            }
    return None, {"method": method, "team": team.name, "result": "contention; left unassigned"}


def assign_round_robin_batch(
    leads: Sequence[Mapping[str, Any]],
) -> dict[int, tuple[Team | None, Any, dict[str, Any]]]:
    """`assign_round_robin` for many leads at once: {lead id: (team, rep, decision)}.

    `leads` are mappings with `id`, `team_id` and `country`, in the order the single path would
    have met them. Each team's row is locked once (in id order, so two batches cannot deadlock)
    and its available reps read once; leads then take the reps in turn, exactly as one call per
    lead would have handed them out (the rep assigned longest ago first, then ids), and each rep's
    `last_assigned_at` is stamped once with the moment of its last lead, after every stamp already
    in the team. Must run inside the caller's transaction.
    """
    teams = list(Team.objects.all())
    teams_by_id = {team.pk: team for team in teams}
    placed: dict[int, Team | None] = {}
    for lead in leads:
        team = teams_by_id.get(lead["team_id"]) if lead["team_id"] else None
        placed[lead["id"]] = team if team is not None else team_for_country(lead["country"], teams=teams)

    result: dict[int, tuple[Team | None, Any, dict[str, Any]]] = {}
    for lead in leads:
        if placed[lead["id"]] is None:
            result[lead["id"]] = (
                None,
                None,
                {"method": "round_robin", "result": "no team for country", "country": lead["country"]},
            )
    for team in sorted({t for t in placed.values() if t is not None}, key=lambda t: t.pk):
        team_leads = [lead for lead in leads if placed[lead["id"]] is team]
        if connection.in_atomic_block:
            Team.objects.select_for_update().filter(pk=team.pk).values_list("pk", flat=True).first()
        # The whole team in one read: who is available (in round-robin order), who is away, and
        # the newest stamp, which the single path reads with three queries.
        members = list(
            _sellers(team).select_related("user").order_by(F("last_assigned_at").asc(nulls_first=True), "id")
        )
        reps = [m for m in members if not m.is_away and m.user.is_active]
        if not reps:
            for lead in team_leads:
                result[lead["id"]] = (
                    team,
                    None,
                    {
                        "method": "round_robin",
                        "team": team.name,
                        "result": "no available rep (all away or inactive); left unassigned for the team",
                    },
                )
            continue
        skipped = [m.user.username for m in sorted(members, key=lambda m: m.pk) if m.is_away]
        latest = max((m.last_assigned_at for m in members if m.last_assigned_at is not None), default=None)
        stamp = timezone.now()
        if latest is not None and stamp <= latest:
            stamp = latest + dt.timedelta(microseconds=1)
        stamps: dict[int, dt.datetime] = {}
        for position, lead in enumerate(team_leads):
            membership = reps[position % len(reps)]
            stamps[membership.pk] = stamp
            stamp += dt.timedelta(microseconds=1)
            result[lead["id"]] = (
                team,
                membership.user,
                {
                    "method": "round_robin",
                    "team": team.name,
                    "owner": membership.user.username,
                    "skipped_away": skipped,
                },
            )
        if not _claim_stamps([(m, stamps[m.pk]) for m in reps if m.pk in stamps]):
            raise AssignmentContention(team.name)
    return result


def _claim_stamps(claims: list[tuple[TeamMembership, dt.datetime]]) -> bool:
    """Stamp each rep's `last_assigned_at` with its new value, the same compare-and-set as the
    single path (the stamp read is still the stamp); False if any rep's stamp had moved. One
    statement for the team on PostgreSQL, one per rep elsewhere."""
    if connection.vendor != "postgresql":
        for membership, stamp in claims:
            current = TeamMembership.objects.filter(pk=membership.pk)
            current = (
                current.filter(last_assigned_at=membership.last_assigned_at)
                if membership.last_assigned_at is not None
                else current.filter(last_assigned_at__isnull=True)
            )
            if not current.update(last_assigned_at=stamp):
                return False
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TeamMembership._meta.db_table} AS m SET last_assigned_at = v.stamp "
            "FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS v(id, seen, stamp) "
            "WHERE m.id = v.id AND m.last_assigned_at IS NOT DISTINCT FROM v.seen",
            [[m.pk for m, _ in claims], [m.last_assigned_at for m, _ in claims], [s for _, s in claims]],
        )
        return cursor.rowcount == len(claims)


class AssignmentContention(Exception):
    """Another writer assigned in a team while a batch held its row: the batch must not go on."""
