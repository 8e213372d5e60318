"""The SLA sweep: warn at the warning share, act on breached clocks per policy, notify.

Run every minute by Celery beat (`sla.tasks.sla_sweep`) and by `manage.py sla_sweep`. Each batch
is one transaction that claims its leads (SKIP LOCKED on PostgreSQL; SQLite's IMMEDIATE write
lock serialises it), so a second run for the same moment, or a second worker at the same time,
finds nothing left to do. Notifications go out after the batch commits.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db import connection, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext as _

from leads import i18n
from leads.bulk import in_workers
from leads.models import CLOCKED_STAGES, Lead, Team, contact_label

from . import clocks
from .due import ExpiredClock, due_sla_clocks, due_sla_window, expire_sla_batch
from .models import BreachAction, SlaPolicy

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000
# Batches per window of due ids (see run_sweep): the larger the window, the closer together in
# the table the rows of one batch lie; 40 x 5,000 ids is under 2 MB of Python ints.
WINDOW_BATCHES = 40
# Connections a backlog of several batches is shared over (PostgreSQL). A batch is mostly the
# database's own work (a new row version in every index of the lead table, two inserts and their
# foreign-key checks), which one connection does on one core.
SWEEP_WORKERS = 2
# A digest lists this many leads and counts the rest: 250,000 lines help nobody.
DIGEST_LINES = 50


def breach_outcome(action: str, *, new_owner: str | None) -> str:
    """What a breach line says happened to the lead: who has it now, or that nobody could take it."""
    if action == BreachAction.RECYCLE:
        return gettext("recycled to marketing")
    if action == BreachAction.REASSIGN:
        if new_owner:
            return gettext("reassigned to %(rep)s") % {"rep": new_owner}
        return gettext("left unassigned (no rep available)")
    if action == BreachAction.NOTIFY:
        return gettext("still open")
    return action


# How far ahead of this machine's clock a sweep's moment may be without counting as time travel:
# the caller's clock (a test's, another host's) may run a little ahead.
CLOCK_SKEW = dt.timedelta(minutes=1)


class FutureMoment(ValueError):
    """A sweep asked to act at a moment still to come without saying it simulates: breaches
    dated in the future would be recorded, acted on and mailed as if they had happened."""

    def __init__(self, moment: dt.datetime) -> None:
        super().__init__(
            f"{moment.isoformat()} is in the future: sweeping then records breaches that have not "
            "happened. Pass --simulate to simulate that moment, or --dry-run to list what would breach."
        )
        self.moment = moment


def check_moment(now: dt.datetime, *, simulate: bool) -> None:
    """Refuse a future `now` unless the caller simulates (see `FutureMoment`)."""
    if not simulate and now > timezone.now() + CLOCK_SKEW:
        raise FutureMoment(now)


@dataclass
class SweepResult:
    now: dt.datetime
    warned: int = 0
    breached: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    batches: int = 0
    emails: int = 0
    would_breach: list[dict[str, Any]] = field(default_factory=list)

    @property
    def breached_total(self) -> int:
        return sum(self.breached.values())

    def summary(self) -> str:
        actions = ", ".join(f"{n} {a}" for a, n in sorted(self.breached.items())) or "none"
        return (
            f"SLA sweep at {self.now.isoformat()}: {self.breached_total} breached ({actions}), "
            f"{self.warned} warned, {self.emails} emails, {self.batches} batches"
        )


def run_sweep(
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    notify: bool = True,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
    simulate: bool = False,
) -> SweepResult:
    """Warn and act on every clock due at `now` (default: the present). A backlog of several
    batches is shared by `workers` database connections (default SWEEP_WORKERS, PostgreSQL only).

    A `now` in the future is refused (`FutureMoment`) unless `simulate` (then breaches record the
    simulated moment as `detected_at` and the real time as `recorded_at`) or `dry_run`."""
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("the sweep's moment must carry a time zone")
    check_moment(now, simulate=simulate or dry_run)
    result = SweepResult(now=now)
    if not dry_run and not _anything_to_do(now):
        return result
    policies = clocks.active_policies()
    if dry_run:
        result.would_breach = _would_breach(now=now, policies=policies, batch_size=batch_size)
        return result

    breached: list[ExpiredClock] = []
    window_size = batch_size * WINDOW_BATCHES
    if workers is None:
        workers = SWEEP_WORKERS
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        # SQLite takes one writer at a time; inside a caller's transaction other connections
        # could not see its rows.
        workers = 1
    lock = threading.Lock()

    def record(batch: list[ExpiredClock]) -> None:
        with lock:
            result.batches += 1
            for item in batch:
                result.breached[item.action] += 1
            if notify:
                breached.extend(batch)
            if progress:
                progress(f"batch {result.batches}: {len(batch)} breached ({result.breached_total} so far)")

    while True:
        # A window of due ids in deadline order, claimed batch by batch in table order: see
        # `sla.due`.
        window = due_sla_window(now=now, limit=window_size)
        chunks = [window[start : start + batch_size] for start in range(0, len(window), batch_size)]
        notified = result.breached.get(BreachAction.NOTIFY, 0)
        acted = _expire_chunks(
            chunks, now=now, policies=policies, batch_size=batch_size, workers=workers, record=record
        )
        # A short window was the whole backlog, unless a notify-only breach moved a lead on to
        # a clock that is already due too (a speed-to-lead breach found days late: its
        # accept-or-reject clock ran out as well), which the next window takes. A window with
        # nothing left to claim belongs to another worker (or was acted on meanwhile): either
        # way this run is done.
        if not acted or (len(window) < window_size and result.breached.get(BreachAction.NOTIFY, 0) == notified):
            break

    warned: list[dict[str, Any]] = []
    while True:
        batch_warned = _warn_batch(now=now, limit=batch_size)
        result.warned += len(batch_warned)
        if notify:
            warned.extend(batch_warned)
        if len(batch_warned) < batch_size:
            break
        if progress:
            progress(f"{result.warned} warned so far")

    if notify:
        result.emails = _send_notifications(breached=breached, warned=warned, policies=policies)
    return result


def _expire_chunks(
    chunks: list[list[int]],
    *,
    now: dt.datetime,
    policies: dict[str, SlaPolicy],
    batch_size: int,
    workers: int,
    record: Callable[[list[ExpiredClock]], None],
) -> int:
    """Claim and act on each chunk of a window (one batch, one transaction each); with more than
    one worker, on that many threads with a connection each, taking chunks in turn. SKIP LOCKED
    and the deadline check under the lock keep any two batches apart, as for two sweeps."""
    acted = 0

    def expire(chunk: list[int]) -> list[ExpiredClock]:
        return expire_sla_batch(now=now, policies=policies, limit=batch_size, lead_ids=chunk)

    def done(batch: list[ExpiredClock]) -> None:
        nonlocal acted
        if batch:
            acted += len(batch)
            record(batch)

    in_workers(chunks, expire, workers=workers, on_result=done, name="sla-sweep")
    return acted


def _anything_to_do(now: dt.datetime) -> bool:
    """The every-minute common case in one round trip: is any clock due or past its warning?

    Both halves repeat the predicates of the partial indexes lead_sla_due_idx and
    lead_sla_warn_idx, so each is a probe of a small index whatever the size of the table.
    """
    table = Lead._meta.db_table
    moment = connection.ops.adapt_datetimefield_value(now)
    stages = list(CLOCKED_STAGES)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {table} WHERE stage IN (%s, %s) "
            "AND sla_due_at IS NOT NULL AND sla_due_at <= %s) "
            f"OR EXISTS (SELECT 1 FROM {table} WHERE stage IN (%s, %s) AND sla_warn_at IS NOT NULL "
            "AND sla_warned_at IS NULL AND sla_warn_at <= %s AND sla_due_at > %s)",
            [*stages, moment, *stages, moment, moment],
        )
        return bool(cursor.fetchone()[0])


def _would_breach(*, now: dt.datetime, policies: dict[str, SlaPolicy], batch_size: int) -> list[dict[str, Any]]:
    rows = due_sla_clocks(now=now, limit=10**9)
    for row in rows:
        policy = policies.get(row["sla_clock"])
        row["action"] = policy.breach_action if policy else "close (no active policy)"
    return rows


def _warn_batch(*, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """Mark up to `limit` leads past their warning point (and not yet due) as warned."""
    with transaction.atomic():
        # Same predicate as the partial index lead_sla_warn_idx.
        qs = (
            Lead.objects.filter(
                stage__in=CLOCKED_STAGES,
                sla_warn_at__isnull=False,
                sla_warned_at__isnull=True,
                sla_warn_at__lte=now,
                sla_due_at__gt=now,
            )
            .order_by("sla_warn_at", "id")
            .select_for_update(skip_locked=True, no_key=True, of=("self",))
        )
        rows: list[dict[str, Any]] = [
            dict(row)
            for row in qs.values("id", "first_name", "last_name", "email", "owner_id", "sla_clock", "sla_due_at")[
                :limit
            ]
        ]
        if rows:
            Lead.objects.filter(pk__in=[r["id"] for r in rows], sla_warned_at__isnull=True).update(sla_warned_at=now)
    return rows


def _when(moment: dt.datetime) -> str:
    """A deadline in the active language's format and time zone, with the zone's name."""
    local = timezone.localtime(moment)
    return f"{formats.date_format(local, 'SHORT_DATETIME_FORMAT')} {local.tzname()}"


def _breach_line(
    item: ExpiredClock, policy: SlaPolicy | None, base: str, *, new_owner: str | None
) -> Callable[[], str]:
    def line() -> str:
        return _("BREACHED %(policy)s: %(lead)s (due %(due)s) - %(outcome)s. %(link)s") % {
            "policy": policy.name if policy else item.clock,
            "lead": item.name,
            "due": _when(item.due_at),
            "outcome": breach_outcome(item.action, new_owner=new_owner),
            "link": f"{base}/leads/{item.lead_id}/",
        }

    return line


def _warning_line(row: dict[str, Any], policy: SlaPolicy | None, base: str) -> Callable[[], str]:
    def line() -> str:
        return _("WARNING %(policy)s: %(lead)s is due %(due)s. %(link)s") % {
            "policy": policy.name if policy else row["sla_clock"],
            "lead": contact_label(row["first_name"], row["last_name"], row["email"]),
            "due": _when(row["sla_due_at"]),
            "link": f"{base}/leads/{row['id']}/",
        }

    return line


def _send_notifications(
    *, breached: list[ExpiredClock], warned: list[dict[str, Any]], policies: dict[str, SlaPolicy]
) -> int:
    """One digest per recipient: the owner of each lead, and for breaches the team's manager.

    A digest shows its first DIGEST_LINES lines and counts the rest, so only those lines are
    formatted: a 250,000-lead backlog costs a count per recipient, not a quarter of a million
    strings."""
    User = get_user_model()
    # Lines are written per recipient, in their language and time zone (leads.i18n): what goes
    # in a digest is collected first, then formatted inside the recipient's locale.
    lines: dict[int, list[Callable[[], str]]] = defaultdict(list)
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # user id -> [breaches, warnings]
    # Who hears of a breach depends only on its clock, owner, team and new owner: count the
    # breaches per such group (in C), then work out each group's recipients once.
    groups = Counter((item.clock, item.owner_id, item.team_id, item.new_owner_id) for item in breached)
    team_ids = {team_id for _, _, team_id, _ in groups if team_id}
    managers = dict(Team.objects.filter(pk__in=team_ids, manager__isnull=False).values_list("id", "manager_id"))
    recipients_of: dict[tuple[Any, ...], set[int]] = {}
    for key, count in groups.items():
        clock, owner_id, team_id, new_owner_id = key
        policy = policies.get(clock)
        candidates = {owner_id, new_owner_id}
        if (policy is None or policy.escalate_to_manager) and team_id is not None:
            candidates.add(managers.get(team_id))
        recipients = {user_id for user_id in candidates if user_id}
        recipients_of[key] = recipients
        for user_id in recipients:
            counts[user_id][0] += count
    # Each recipient's digest lists its first DIGEST_LINES breaches: stop reading the backlog
    # once every digest is full.
    unwritten = sum(min(DIGEST_LINES, breaches) for breaches, _ in counts.values())
    base = settings.LEADFLOW_BASE_URL.rstrip("/")
    new_owners = {item.new_owner_id for item in breached if item.new_owner_id}
    names = {
        pk: " ".join(part for part in (first, last) if part) or username
        for pk, username, first, last in User.objects.filter(pk__in=new_owners).values_list(
            "pk", "username", "first_name", "last_name"
        )
    }
    for item in breached:
        if not unwritten:
            break
        policy = policies.get(item.clock)
        line = None
        for user_id in recipients_of[(item.clock, item.owner_id, item.team_id, item.new_owner_id)]:
            if len(lines[user_id]) >= DIGEST_LINES:
                continue
            unwritten -= 1
            if line is None:
                line = _breach_line(item, policy, base, new_owner=names.get(item.new_owner_id or 0))
            lines[user_id].append(line)
    for row in warned:
        user_id = row["owner_id"]
        if user_id:
            counts[user_id][1] += 1
            if len(lines[user_id]) >= DIGEST_LINES:
                continue
            lines[user_id].append(_warning_line(row, policies.get(row["sla_clock"]), base))
    if not lines:
        return 0
    emails = dict(User.objects.filter(pk__in=lines, is_active=True).exclude(email="").values_list("id", "email"))
    messages = []
    locales = i18n.locales_for(emails)
    for user_id, pending in lines.items():
        if user_id not in emails:
            continue
        breaches, warnings = counts[user_id]
        with i18n.activated(locales[user_id]):
            parts = []
            if breaches:
                parts.append(ngettext("%(count)s breached", "%(count)s breached", breaches) % {"count": breaches})
            if warnings:
                parts.append(ngettext("%(count)s due soon", "%(count)s due soon", warnings) % {"count": warnings})
            subject = _("LeadFlow SLA: %(counts)s") % {"counts": ", ".join(parts)}
            shown = [line() for line in pending]
            more = breaches + warnings - len(shown)
            if more > 0:
                shown.append(
                    ngettext(
                        "... and %(count)s more (see the breaches page).",
                        "... and %(count)s more (see the breaches page).",
                        more,
                    )
                    % {"count": more}
                )
        messages.append((subject, "\n".join(shown) + "\n", settings.DEFAULT_FROM_EMAIL, [emails[user_id]]))
    try:
        return send_mass_mail(messages, fail_silently=False)
    except Exception:
        # The breaches are recorded and visible; a mail server outage must not undo them.
        logger.exception("SLA sweep could not send %d notification emails", len(messages))
        return 0
