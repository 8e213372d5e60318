"""Scoring services: the database side of the pure engine.

Every path (events, lead changes, activation, the daily decay refresh, `rescore --all`) goes
through `_score_batch`: load the batch's leads and their relevant events in two queries, score
them with the compiled definition, write the changed scores in one statement, then promote the
leads that now qualify, the whole batch at once, through `leads.lifecycle.promote_batch_to_mql`
(on PostgreSQL `rescore --all` sums behavior in SQL instead: `_score_range_sql`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.utils import timezone
from django.utils.translation import gettext as _

from leadflow.celery import task as celery_task
from leads import permissions
from leads.assignment import AssignmentContention
from leads.bulk import in_workers
from leads.lifecycle import PROMOTABLE_STAGES, SYSTEM, TransitionError, promote_batch_to_mql, promote_to_mql
from leads.models import OPEN_STAGES, Event, Lead

from . import engine, sql
from .definitions import FACT_FIELDS, DefinitionError, active_definition, compiled, content_hash, missing_signatures
from .models import DefinitionState, QualifiedLeadDefinition, RescoreKind, RescoreRequest

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
# Leads per range of the PostgreSQL rescore: one behavior query and one UPDATE each.
SQL_BATCH_SIZE = 20000
# Connections the PostgreSQL rescore spreads its ranges over. Writing a million scores is mostly
# the database's index maintenance (each changed row is a new row version in every index of the
# lead table), which one connection does on one core.
RESCORE_WORKERS = 2

# --- Activation: the new definition scores every open lead ----------------------------------


def activate_definition(
    definition: QualifiedLeadDefinition, *, user, rescore: str = "background"
) -> QualifiedLeadDefinition:
    """Make a signed draft the one active definition (retiring the current one) and re-score
    every open lead: `rescore="background"` queues the set-based rescore after commit,
    `"now"` runs it in this call, `"no"` skips it."""
    if not (permissions.is_marketing(user) or permissions.is_manager(user)):
        raise DefinitionError(_("Only marketing or a sales manager activates a definition."), code="permission_denied")
    if definition.state != DefinitionState.DRAFT:
        raise DefinitionError(
            _("Definition v%(version)s is %(state)s; only a draft is activated.")
            % {"version": definition.version, "state": definition.get_state_display()},
            code="not_a_draft",
        )
    now = timezone.now()
    with transaction.atomic():
        # Checked again under the row lock that edits and signatures take: a signature counts
        # only on the content being activated, whatever happened since the caller read it.
        locked = QualifiedLeadDefinition.objects.select_for_update().get(pk=definition.pk)
        if locked.state != DefinitionState.DRAFT:
            raise DefinitionError(
                f"Definition v{locked.version} is {locked.state}; only a draft is activated.",
                code="not_a_draft",
            )
        missing = missing_signatures(locked, current_hash=content_hash(locked))
        if missing:
            raise DefinitionError(
                _("Activation needs both sign-offs on the current content; missing: %(sides)s.")
                % {"sides": " and ".join(missing)},
                code="signoff_missing",
            )
        QualifiedLeadDefinition.objects.select_for_update().filter(state=DefinitionState.ACTIVE).update(
            state=DefinitionState.RETIRED, retired_at=now
        )
        locked.state = DefinitionState.ACTIVE
        locked.activated_at = now
        fields = ["state", "activated_at"]
        if locked.review_by is None:
            # SPEC: reviewed one quarter after activation unless the team chose a date.
            locked.review_by = (now + dt.timedelta(days=91)).date()
            fields.append("review_by")
        locked.save(update_fields=fields)
        if rescore == "background":
            # In the activation's transaction: the rescore commits with it, and the outbox
            # redoes it if the task is lost.
            _request_rescore(kind=RescoreKind.ALL)
    if rescore == "now":
        rescore_all()
    # The caller's object as activated (it may have been read before an edit).
    definition.refresh_from_db()
    return definition


# --- Scoring leads --------------------------------------------------------------------------


def _load_events(
    lead_ids: list[int], definition: engine.CompiledDefinition, *, until: dt.datetime | None = None
) -> dict[int, list[engine.EventTuple]]:
    events: dict[int, list[engine.EventTuple]] = defaultdict(list)
    if not definition.event_types or not lead_ids:
        return events
    qs = Event.objects.filter(lead_id__in=lead_ids, type__in=definition.event_types)
    if until is not None:
        qs = qs.filter(occurred_at__lte=until)
    # Only the property values the rules filter on, as text: decoding every event's whole
    # properties JSON would cost more than the scoring itself.
    keys = sorted({rule.filter.field for rule in definition.behavior_rules if rule.filter is not None})
    annotations = {f"_p{i}": KT(f"properties__{key}") for i, key in enumerate(keys)}
    rows = qs.order_by().annotate(**annotations).values_list("lead_id", "type", "occurred_at", *annotations)
    for lead_id, event_type, occurred_at, *values in rows:
        events[lead_id].append((event_type, occurred_at, dict(zip(keys, values, strict=False))))
    return events


def fact_fields(definition: engine.CompiledDefinition) -> tuple[str, ...]:
    """Lead columns the rules read; `attributes` (a JSON decode per lead) only when needed."""
    names = {rule.condition.field for rule in definition.fit_rules}
    names |= {k.condition.field for k in definition.knockouts} | set(definition.required_fields)
    columns = [name for name in FACT_FIELDS if name in names]
    if names - set(FACT_FIELDS):
        columns.append("attributes")
    return tuple(columns)


def _write_scores(rows: list[tuple[int, float, float]], *, now: dt.datetime) -> None:
    """One UPDATE for the batch: from three arrays on PostgreSQL, a CASE update elsewhere."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        table = Lead._meta.db_table
        ids, fits, behaviors = (list(column) for column in zip(*rows, strict=False))
        # Three array parameters rather than a VALUES list of 60,000 placeholders: a fraction of
        # the statement to build, send and parse. The extra `= ANY(ids)` lets the planner probe
        # the primary key instead of hash-joining the arrays against a scan of the lead table.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS l SET fit_score = v.fit, behavior_score = v.behavior, "
                "scored_at = %s FROM unnest(%s::bigint[], %s::double precision[], "
                "%s::double precision[]) AS v(id, fit, behavior) "
                "WHERE l.id = v.id AND l.id = ANY(%s)",
                [now, ids, fits, behaviors, ids],
            )
        return
    leads = [Lead(pk=pk, fit_score=fit, behavior_score=behavior, scored_at=now) for pk, fit, behavior in rows]
    Lead.objects.bulk_update(leads, ["fit_score", "behavior_score", "scored_at"])


def _score_batch(
    lead_ids: list[int],
    definition: engine.CompiledDefinition,
    *,
    now: dt.datetime,
    open_only: bool = False,
) -> list[tuple[int, str]]:
    """Score the leads, write changed scores, return (lead id, reason) of those to promote."""
    qs = Lead.objects.filter(pk__in=lead_ids)
    if open_only:
        qs = qs.filter(stage__in=OPEN_STAGES)
    columns = ("id", "stage", "stage_entered_at", "fit_score", "behavior_score", *fact_fields(definition))
    leads = list(qs.order_by().values(*columns))
    ids = [lead["id"] for lead in leads]
    query = _behavior_query(definition)
    if query is not None:
        # PostgreSQL ranks, decays and sums the events (as the set-based rescore does): the
        # thousands of event rows behind a batch never travel to Python.
        behaviors = sql.behavior_scores(definition, query, ids=ids, now=now)
        raised = sql.latest_hand_raisers(definition, ids=ids)
        return _score_leads(leads, definition, behaviors, _hand_raised_by(raised), now=now)
    events = _load_events(ids, definition)
    behaviors = {lead_id: engine.behavior_score(definition, rows, now=now) for lead_id, rows in events.items()}

    def hand_raised(lead: dict[str, Any]) -> bool:
        return engine.hand_raised(
            definition, events.get(lead["id"], ()), stage=lead["stage"], stage_entered_at=lead["stage_entered_at"]
        )

    return _score_leads(leads, definition, behaviors, hand_raised, now=now)


def _score_leads(
    leads: list[dict[str, Any]],
    definition: engine.CompiledDefinition,
    behaviors: Mapping[int, float],
    hand_raised: Callable[[dict[str, Any]], bool],
    *,
    now: dt.datetime,
    fit_scores: FitScores | None = None,
) -> list[tuple[int, str]]:
    """What every scoring path shares once behavior is known: fit each lead, write the scores
    that changed, and return (lead id, reason) of the leads to promote. `behaviors`: {lead id:
    behavior}, 0 for a lead absent; `hand_raised(lead)`: whether a hand-raiser counts for it."""
    score_fit = fit_scores or FitScores(definition)
    changed: list[tuple[int, float, float]] = []
    promote: list[tuple[int, str]] = []
    for lead in leads:
        fit = score_fit(lead)
        behavior = behaviors.get(lead["id"], 0.0)
        if abs(fit - lead["fit_score"]) > 1e-9 or abs(behavior - lead["behavior_score"]) > 1e-9:
            changed.append((lead["id"], fit, behavior))
        stage = lead["stage"]
        if stage not in PROMOTABLE_STAGES or fit < definition.fit_threshold:
            continue  # decide() would refuse it
        decision = engine.decide(
            definition,
            stage=stage,
            stage_entered_at=lead["stage_entered_at"],
            fit=fit,
            behavior=behavior,
            knockouts=engine.knockouts_hit(definition, lead),
            missing=engine.missing_fields(definition, lead),
            hand_raised=hand_raised(lead),
            now=now,
        )
        if decision.qualifies:
            promote.append((lead["id"], decision.reason))
    _write_scores(changed, now=now)
    return promote


def _behavior_query(definition: engine.CompiledDefinition) -> tuple[str, list[Any]] | None:
    """The by-ids behavior query on PostgreSQL; None on other databases or when a rule has no
    SQL form (the engine scores the loaded events then)."""
    if connection.vendor != "postgresql":
        return None
    return sql.behavior_sql(definition, by_ids=True)


class FitScores:
    """`engine.fit_score`, remembered by the values the fit rules read: a million leads share a
    few thousand (title, size, ...) combinations, and the rules run once for each."""

    LIMIT = 200_000

    def __init__(self, definition: engine.CompiledDefinition) -> None:
        self.definition = definition
        self.fields = tuple(rule.condition.field for rule in definition.fit_rules)
        self.known: dict[tuple, float] = {}

    def __call__(self, lead: Mapping[str, Any]) -> float:
        # The type is part of the key: 1, 1.0 and True are equal keys but not equal facts.
        key = tuple((type(value), value) for value in (engine.fact(lead, name) for name in self.fields))
        try:
            return self.known[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable attribute value (a list, a dict): just score it
            return engine.fit_score(self.definition, lead)
        if len(self.known) >= self.LIMIT:
            self.known.clear()
        fit = self.known[key] = engine.fit_score(self.definition, lead)
        return fit


def _score_range_sql(
    leads: list[dict[str, Any]],
    definition: engine.CompiledDefinition,
    behavior_query: tuple[str, list[Any]],
    *,
    now: dt.datetime,
    fit_scores: FitScores | None = None,
) -> list[tuple[int, str]]:
    """`_score_batch` for an id-ordered slice of open leads, behavior summed by PostgreSQL."""
    lo, hi = leads[0]["id"], leads[-1]["id"]
    behaviors = sql.behavior_scores(definition, behavior_query, lo=lo, hi=hi, now=now)
    raised = sql.latest_hand_raisers(definition, lo=lo, hi=hi)
    return _score_leads(leads, definition, behaviors, _hand_raised_by(raised), now=now, fit_scores=fit_scores)


def _hand_raised_by(latest: Mapping[int, dt.datetime]) -> Callable[[dict[str, Any]], bool]:
    """`hand_raised` for `_score_leads` from {lead id: newest hand-raiser event}."""
    return lambda lead: engine.hand_raise_counts(
        latest.get(lead["id"]), stage=lead["stage"], stage_entered_at=lead["stage_entered_at"]
    )


def _promote(candidates: list[tuple[int, str]], *, version: int | None) -> int:
    """Promote through the lifecycle, the whole batch at once; a lead another path
    moved meanwhile is skipped. Should the batch be refused as a whole (a lost race the locks
    should have prevented), each lead is tried on its own instead."""
    try:
        return len(promote_batch_to_mql(candidates, actor=SYSTEM, definition_version=version))
    except (TransitionError, AssignmentContention) as exc:
        log.warning("Batch promotion of %d leads refused (%s); promoting one by one", len(candidates), exc)
    promoted = 0
    reasons = dict(candidates)
    for lead in Lead.objects.filter(pk__in=list(reasons)).order_by("pk"):
        try:
            promote_to_mql(lead, actor=SYSTEM, reason=reasons[lead.pk], definition_version=version)
        except TransitionError as exc:
            log.info("Lead %s not promoted: %s", lead.pk, exc)
            continue
        promoted += 1
    return promoted


def _rescore(
    lead_ids: Iterable[int],
    *,
    now: dt.datetime | None = None,
    lock: bool = False,
    on_batch: Callable[[], None] | None = None,
) -> int:
    """Score the leads in batches and promote the qualifying ones. `lock`: take the leads' row
    locks (in id order) before reading their events, so two rescores of one lead never write
    scores computed from different event sets in the wrong order. Callers that already hold
    the locks (the events API inside its transaction) pass False."""
    model = active_definition()
    if model is None:
        return 0
    definition = compiled(model)
    ids = sorted(set(lead_ids))
    promoted = 0
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        with transaction.atomic():
            if lock:
                list(Lead.objects.select_for_update(no_key=True).filter(pk__in=batch).order_by("pk").values_list("pk"))
            # The moment is read after the locks: a later event must not look older than it.
            candidates = _score_batch(batch, definition, now=now or timezone.now())
            if candidates:
                promoted += _promote(candidates, version=definition.version)
        if on_batch is not None:
            on_batch()
    return promoted


def on_events_recorded(lead_ids: Iterable[int], *, now: dt.datetime | None = None) -> None:
    """Called in the transaction that inserted new events: recompute those leads' behavior
    (and fit) from all their events and promote the ones that now qualify. A duplicate event
    was never inserted, and the score is recomputed from the stored events, so delivering an
    event twice changes nothing."""
    _rescore(lead_ids, now=now)


def on_lead_changed(lead_ids: Iterable[int]) -> None:
    """Recompute fit (and behavior) after leads were created or edited; promote if qualifying."""
    _rescore(lead_ids)


def rescore_leads(lead_ids: Iterable[int], *, now: dt.datetime | None = None) -> int:
    """Rescore the given leads under their row locks; the number promoted."""
    return _rescore(lead_ids, now=now, lock=True)


def rescore_after_commit(lead_ids: Iterable[int]) -> None:
    """Score these leads after the current transaction commits, on the Celery worker
    (`SCORING_EVENTS_ASYNC`): the events API then answers as soon as its events are stored. The
    request is written to the rescore outbox in the caller's transaction, so it exists exactly
    when the events do."""
    ids = sorted(set(lead_ids))
    if ids:
        _request_rescore(kind=RescoreKind.LEADS, lead_ids=ids)


# --- The rescore outbox -----------------------------------------------------------------------


def claim_lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.RESCORE_CLAIM_SECONDS)


def _request_rescore(*, kind: str, lead_ids: list[int] | None = None) -> RescoreRequest:
    """Write the outbox row in the current transaction and queue its task once it commits.
    Should the broker refuse the task, the rescore runs right here instead, so a broker outage
    delays no score; should this process die first, `redo_rescore_outbox` finds the row."""
    request = RescoreRequest.objects.create(kind=kind, lead_ids=lead_ids or [])

    def enqueue() -> None:
        try:
            celery_task("scoring.tasks.run_rescore_request").apply_async((request.pk,), retry=False)
        except Exception:
            log.exception("Could not queue rescore request %s; running it now", request.pk)
            run_rescore_request(request.pk)

    transaction.on_commit(enqueue)
    return request


def run_rescore_request(request_id: int) -> str:
    """Claim the outbox row (a conditional UPDATE: one worker wins), rescore, mark it done.
    The lease is renewed after every batch, so a long rescore keeps its row while a killed one
    lets go of it within a lease. Running a row twice is harmless (scores are recomputed from
    stored facts and promotion compares-and-sets the stage), only wasted work."""
    now = timezone.now()
    claimed = RescoreRequest.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now), pk=request_id, done_at__isnull=True
    ).update(claimed_until=now + claim_lease(), attempts=F("attempts") + 1)
    if not claimed:
        return "skipped"
    request = RescoreRequest.objects.get(pk=request_id)

    def renew(*_: int) -> None:
        RescoreRequest.objects.filter(pk=request_id, done_at__isnull=True).update(
            claimed_until=timezone.now() + claim_lease()
        )

    if request.kind == RescoreKind.ALL:
        rescore_all(progress=renew)
    else:
        _rescore(request.lead_ids, lock=True, on_batch=renew)
    RescoreRequest.objects.filter(pk=request_id).update(done_at=timezone.now(), claimed_until=None)
    return "done"


def unfinished_rescore_requests(*, now: dt.datetime | None = None, limit: int = 1000) -> list[int]:
    """Rows to queue again: unclaimed for a whole lease since they were written (their task was
    lost), or claimed by a worker whose lease ran out (killed mid-rescore)."""
    now = now or timezone.now()
    lapsed = Q(claimed_until__lt=now) | Q(claimed_until__isnull=True, created_at__lt=now - claim_lease())
    return list(
        RescoreRequest.objects.filter(lapsed, done_at__isnull=True)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def forget_done_rescore_requests(*, now: dt.datetime | None = None, keep: dt.timedelta = dt.timedelta(days=7)) -> int:
    """Done rows are kept a week (to see what ran and how often), then deleted."""
    cutoff = (now or timezone.now()) - keep
    deleted, _ = RescoreRequest.objects.filter(done_at__lt=cutoff).delete()
    return deleted


def rescore_all(
    *,
    progress: Callable[[int, int], None] | None = None,
    now: dt.datetime | None = None,
    workers: int | None = None,
) -> dict[str, int]:
    """Re-score every open lead in id-ordered batches (one UPDATE per batch) and promote the ones
    that now qualify. `progress(done, total)` is called after each batch.

    On PostgreSQL the batches are id ranges fixed up front and shared by `workers` connections
    (default RESCORE_WORKERS): each range is scored, written and promoted in its own
    transactions, so ranges never touch the same lead and two connections keep two cores of the
    database busy. Inside a caller's transaction (whose rows other connections cannot see) the
    ranges run one after another on the caller's connection."""
    model = active_definition()
    if model is None:
        return {"scored": 0, "promoted": 0}
    definition = compiled(model)
    now = now or timezone.now()
    open_leads = Lead.objects.filter(stage__in=OPEN_STAGES).order_by()
    last_id = 0
    done = promoted = 0
    if connection.vendor == "postgresql":
        query = sql.behavior_sql(definition)
        if query is not None:
            columns = ("id", "stage", "stage_entered_at", "fit_score", "behavior_score", *fact_fields(definition))
            starts = sql.range_starts(Lead._meta.db_table, stages=OPEN_STAGES, size=SQL_BATCH_SIZE)
            ranges = list(zip(starts, [*starts[1:], None], strict=False))
            total = open_leads.count()
            tally = {"scored": 0, "promoted": 0}
            fit_scores = FitScores(definition)

            def score_range(bounds: tuple[int, int | None]) -> tuple[int, int]:
                low, high = bounds
                leads_in_range = open_leads.filter(pk__gte=low)
                if high is not None:
                    leads_in_range = leads_in_range.filter(pk__lt=high)
                leads = list(leads_in_range.order_by("pk").values(*columns))
                if not leads:
                    return 0, 0
                with transaction.atomic():
                    candidates = _score_range_sql(leads, definition, query, now=now, fit_scores=fit_scores)
                return len(leads), _promote(candidates, version=definition.version) if candidates else 0

            def record(result: tuple[int, int]) -> None:
                tally["scored"] += result[0]
                tally["promoted"] += result[1]
                if progress is not None:
                    progress(tally["scored"], total)

            count = RESCORE_WORKERS if workers is None else workers
            if connection.in_atomic_block:
                count = 1
            in_workers(ranges, score_range, workers=count, on_result=record, name="rescore")
            return tally
    total = open_leads.count()
    while True:
        ids = list(open_leads.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:BATCH_SIZE])
        if not ids:
            break
        last_id = ids[-1]
        with transaction.atomic():
            candidates = _score_batch(ids, definition, now=now, open_only=True)
        if candidates:
            promoted += _promote(candidates, version=definition.version)
        done += len(ids)
        if progress is not None:
            progress(done, total)
    return {"scored": done, "promoted": promoted}


def refresh_decayed_scores() -> str:
    """The daily refresh: decay lowers stored behavior scores of leads nobody touched.

    It goes through the outbox like any whole-table rescore: the row is committed first and
    then run here, so a worker killed half-way leaves a row whose lease lapses and
    `redo_rescore_outbox` finishes the refresh within a minute instead of the next night."""
    request = RescoreRequest.objects.create(kind=RescoreKind.ALL)
    return run_rescore_request(request.pk)


# --- Explanation ----------------------------------------------------------------------------


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"%\((\w+)\)s", template)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts))
    return re.compile(regex)


WHY_NOT_PATTERNS = [(template, _template_pattern(template)) for template in engine.WHY_NOT_TEMPLATES]


def why_not_in_words(line: str) -> str:
    """One of the engine's English reasons in the active language (issue 24); a line the engine
    did not write from its templates is returned as it is."""
    for template, pattern in WHY_NOT_PATTERNS:
        match = pattern.fullmatch(line)
        if match:
            return _(template) % match.groupdict()
    return line


def explain_lead(lead: Lead, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Why the lead scores what it does under the active definition, rule by rule."""
    model = active_definition()
    now = now or timezone.now()
    if model is None:
        return {
            "lead": lead.pk,
            "definition_version": None,
            "definition_name": None,
            "stage": lead.stage,
            "qualifies": False,
            "why_not": [_("No qualified-lead definition is active.")],
            "fit": {"score": lead.fit_score, "threshold": None, "grade": lead.fit_grade, "rules": []},
            "behavior": {"score": lead.behavior_score, "threshold": None, "rules": []},
            "knockouts": [],
            "knockouts_hit": [],
            "missing_fields": [],
            "hand_raiser": False,
            "reason": "",
            "computed_at": now.isoformat(),
        }
    definition = compiled(model)
    facts = {name: getattr(lead, name) for name in FACT_FIELDS}
    events = _load_events([lead.pk], definition, until=None).get(lead.pk, [])
    data = engine.explain(definition, facts, events, stage=lead.stage, stage_entered_at=lead.stage_entered_at, now=now)
    data.update(
        lead=lead.pk,
        definition_name=model.name,
        stage=lead.stage,
        computed_at=now.isoformat(),
        why_not=[why_not_in_words(line) for line in data.get("why_not", [])],
    )
    return data
