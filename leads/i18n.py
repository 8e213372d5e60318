"""Whose language and time zone a page or an e-mail is in (issue 24).

A user's own choice (their `UserProfile`) comes first, then the default of their team, then the
site's `LANGUAGE_CODE` / `TIME_ZONE`. E-mails are written inside `for_recipient(...)`, so their
subject, body, dates and numbers are in the recipient's language and zone, whoever triggered them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone, translation

from .models import Team, TeamMembership, UserProfile


@dataclass(frozen=True)
class Locale:
    language: str
    time_zone: str
    # True when the language was chosen (by the user or their team), not the site's default: a
    # page then follows it rather than the browser's Accept-Language.
    chosen: bool = False


def site_locale() -> Locale:
    return Locale(language=settings.LANGUAGE_CODE, time_zone=settings.TIME_ZONE)


def _known_language(code: str) -> bool:
    return code in {language for language, _ in settings.LANGUAGES}


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone(name: str) -> ZoneInfo:
    """The zone called `name`, else the site's."""
    return _zone(name) or ZoneInfo(settings.TIME_ZONE)


def team_locale(team: Team | None) -> Locale:
    """A team's notices (and those about its unassigned leads): its defaults, else the site's."""
    site = site_locale()
    if team is None:
        return site
    chosen = _known_language(team.language)
    return Locale(
        language=team.language if chosen else site.language,
        time_zone=team.time_zone if _zone(team.time_zone) else site.time_zone,
        chosen=chosen,
    )


def locales_for(user_ids: Iterable[int]) -> dict[int, Locale]:
    """Each user's locale in two queries (profiles, then their teams' defaults) for a batch of
    recipients, such as one SLA sweep's digests."""
    ids = set(user_ids)
    site = site_locale()
    profiles = {p.user_id: p for p in UserProfile.objects.filter(user_id__in=ids)}
    team_of: dict[int, Team] = {}
    for membership in TeamMembership.objects.filter(user_id__in=ids).select_related("team").order_by("team__name"):
        team_of.setdefault(membership.user_id, membership.team)
    for team in Team.objects.filter(manager_id__in=ids).order_by("name"):
        assert team.manager_id is not None
        team_of.setdefault(team.manager_id, team)
    result = {}
    for user_id in ids:
        profile = profiles.get(user_id)
        fallback = team_locale(team_of.get(user_id)) if user_id in team_of else site
        own = profile is not None and _known_language(profile.language)
        language = profile.language if own and profile else fallback.language
        time_zone = profile.time_zone if profile and _zone(profile.time_zone) else fallback.time_zone
        result[user_id] = Locale(language=language, time_zone=time_zone, chosen=own or fallback.chosen)
    return result


def locale_for(user) -> Locale:
    if user is None or not getattr(user, "pk", None):
        return site_locale()
    return locales_for([user.pk])[user.pk]


@contextlib.contextmanager
def activated(locale: Locale) -> Iterator[None]:
    """Translations and the current time zone of `locale` for the block (an e-mail's text)."""
    with translation.override(locale.language), timezone.override(zone(locale.time_zone)):
        yield


@contextlib.contextmanager
def for_recipient(user) -> Iterator[Locale]:
    locale = locale_for(user)
    with activated(locale):
        yield locale


def save_language(user, language: str) -> None:
    """The picker's choice, kept on the user's profile (blank: follow the browser again)."""
    language = language if _known_language(language) else ""
    UserProfile.objects.update_or_create(user=user, defaults={"language": language})


SESSION_KEY = "leadflow_locale"
# A change made elsewhere (the admin, a team's new default) reaches a signed-in user within this
# many seconds: the session's copy is read again after it.
SESSION_MAX_AGE = 300


def remember(session, user) -> Locale:
    """Read the user's locale (at login, after the picker, then every SESSION_MAX_AGE seconds)
    into their session, so a request costs no query for it."""
    locale = locale_for(user)
    session[SESSION_KEY] = [locale.language, locale.time_zone, locale.chosen, int(time.time())]
    return locale


def session_locale(session, user) -> Locale:
    stored = session.get(SESSION_KEY)
    if isinstance(stored, list) and len(stored) == 4 and time.time() - float(stored[3]) < SESSION_MAX_AGE:
        return Locale(language=str(stored[0]), time_zone=str(stored[1]), chosen=bool(stored[2]))
    return remember(session, user)
