"""Small template helpers for the browser pages: role-aware navigation and SLA countdowns."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from leads import permissions

register = template.Library()


@register.simple_tag
def nav_for(user) -> dict[str, bool]:
    """Which top-level pages this user's role opens (the pages themselves check again)."""
    if not getattr(user, "is_authenticated", False):
        return {}
    manager = permissions.is_manager(user)
    marketing = permissions.is_marketing(user)
    rep = permissions.is_rep(user)
    return {
        "inbox": rep or manager,
        "leads": rep or manager or marketing,
        "my_sqls": permissions.is_account_executive(user) or manager,
        "dashboard": manager or marketing,
        "manager": manager,
    }


# Messages the app's own pages add carry this tag; base.html shows only those, so a message the
# admin queued (an action's result) is never shown on, and never lost to, an app page.
APP_MESSAGE_TAG = "app"


@register.simple_tag
def app_messages(storage) -> list:
    """The queued messages tagged for the app's pages; the admin's stay queued for the admin."""
    if storage is None:
        return []
    queued = list(storage)
    for message in queued:
        if APP_MESSAGE_TAG not in (message.extra_tags or "").split():
            storage.add(message.level, message.message, extra_tags=message.extra_tags)
    return [m for m in queued if APP_MESSAGE_TAG in (m.extra_tags or "").split()]


def _span(seconds: int) -> str:
    minutes = max(0, seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(days)sd %(hours)sh") % {"days": days, "hours": hours}
    if hours:
        return _("%(hours)sh %(minutes)sm") % {"hours": hours, "minutes": f"{mins:02d}"}
    return _("%(minutes)sm") % {"minutes": mins}


@register.filter
def countdown(due_at: dt.datetime | None) -> str:
    """'3h 05m left' or 'overdue 1d 2h' — the same words the page's script keeps up to date."""
    if due_at is None:
        return _("no clock")
    seconds = int((due_at - timezone.now()).total_seconds())
    if seconds >= 0:
        return _("%(span)s left") % {"span": _span(seconds)}
    return _("overdue %(span)s") % {"span": _span(-seconds)}


@register.filter
def duration_since(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return _span(int((timezone.now() - moment).total_seconds()))


@register.filter
def get_item(mapping: dict | None, key: str):
    """`mapping[key]` in a template (a sort header's link by its column)."""
    return (mapping or {}).get(key)


@register.simple_tag
def js_strings() -> dict[str, str]:
    """The words the page's script writes (countdowns, error banners), in the page's language."""
    return {
        "days": _("%(days)sd %(hours)sh"),
        "hours": _("%(hours)sh %(minutes)sm"),
        "minutes": _("%(minutes)sm"),
        "left": _("%(span)s left"),
        "overdue": _("overdue %(span)s"),
        "responseError": _(
            "The server could not complete that action (%(status)s). Nothing was changed on this page; "
            "please try again."
        ),
        "sendError": _("Could not reach LeadFlow. Check your connection and try again."),
    }


@register.filter
def percent(rate: float | None, decimals: int = 0) -> str:
    """A 0–1 rate as a percentage in the page's language: "45%", "45 %", "12,5 %"."""
    if rate is None:
        return "—"
    value = number_format(round(float(rate) * 100, int(decimals)), decimal_pos=int(decimals), use_l10n=True)
    return _("%(value)s%%") % {"value": value}
