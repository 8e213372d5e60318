"""Merging a duplicate lead into the one that stays (issue 21, SPEC sections 1 and 6).

`merge_leads(survivor, loser, by=...)` is one transaction that locks both rows (in id order, so
two merges of the same pair never deadlock) and:

- moves the loser's behaviour events (an event id the survivor already has is the same event
  delivered to both: dropped, so it never counts twice) and touches to the survivor;
- fills the survivor's empty profile fields from the loser (never a report dimension: `source`
  and `country` stay the survivor's, so every report grouped or filtered by them is unchanged),
  takes over the loser's external id when the survivor has none, and keeps the stricter consent;
- leaves the loser's stage history and SLA breaches where they are: `StageTransition` rows are
  append-only, and the reports count *distinct leads* entering each stage, so re-pointing the
  loser's entries at the survivor would shrink yesterday's funnel. The survivor's history (API,
  lead page, privacy export) shows them through `merged_into`;
- closes the loser's running SLA clock (no stage change, through `leads.lifecycle`) and turns
  it into a redirect (`merged_into`, `merged_at`); leads merged into the loser earlier now
  point at the survivor, so a redirect is always one hop;
- writes a `LeadAuditEntry` (action `merge`) naming both leads and what moved;
- rescores the survivor from its events (which may promote it to MQL, through the lifecycle).

The survivor keeps its stage: a merge is not a stage change.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from leads import lifecycle
from leads.models import Event, Lead, LeadAuditEntry, PeopleAction, Touch
from scoring import services as scoring

from .errors import ServiceError

# Profile fields the survivor takes from the loser when its own is empty. `source` and `country`
# are left out on purpose: the reports group and filter by them (see the module docstring).
FILLABLE_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "job_title",
    "industry",
    "employees",
    "annual_revenue",
)
# Identity fields added by the identity work of issue 21 (phone, social profiles): taken over
# when present on the model and empty on the survivor.
OPTIONAL_IDENTITY_FIELDS = ("phone", "social_profiles")


def resolve(lead: Lead) -> Lead:
    """The lead a (possibly merged) lead stands for today: follows `merged_into` (one hop by
    construction, a few at most if data was edited by hand)."""
    seen = {lead.pk}
    while lead.merged_into_id is not None and lead.merged_into_id not in seen:
        seen.add(lead.merged_into_id)
        lead = Lead.objects.get(pk=lead.merged_into_id)
    return lead


def check_mergeable(survivor: Lead, loser: Lead) -> None:
    """Refuse a merge that makes no sense, naming the field at fault: `duplicate` is the lead
    merged away, `id` the lead that stays."""
    if survivor.pk == loser.pk:
        raise ServiceError(
            _("A lead cannot be merged into itself."),
            code="validation_error",
            fields={"duplicate": [_("Name another lead than the one merged into.")]},
        )
    if loser.merged_into_id is not None:
        raise ServiceError(
            _("Lead %(id)s was already merged into lead %(into)s.") % {"id": loser.pk, "into": loser.merged_into_id},
            code="already_merged",
            fields={"duplicate": [_("Already merged into lead %(into)s.") % {"into": loser.merged_into_id}]},
        )
    if survivor.merged_into_id is not None:
        raise ServiceError(
            _("Lead %(id)s was already merged into lead %(into)s; merge into that one.")
            % {"id": survivor.pk, "into": survivor.merged_into_id},
            code="already_merged",
            fields={"id": [_("Already merged into lead %(into)s.") % {"into": survivor.merged_into_id}]},
        )
    if survivor.erased_at is not None or loser.erased_at is not None:
        field = "id" if survivor.erased_at is not None else "duplicate"
        raise ServiceError(
            _("An erased lead cannot be merged."),
            code="validation_error",
            fields={field: [_("This lead's personal data was erased.")]},
        )


def _identity_fields() -> tuple[str, ...]:
    names = {f.name for f in Lead._meta.get_fields()}
    return tuple(name for name in OPTIONAL_IDENTITY_FIELDS if name in names)


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


@transaction.atomic
def merge_leads(survivor: Lead, loser: Lead, *, by: lifecycle.Actor) -> dict[str, Any]:
    """Merge `loser` into `survivor` (see the module docstring). Returns what moved, as the
    audit entry records it. Raises `ServiceError` (nothing written) for a merge that makes no
    sense."""
    first, second = sorted((survivor.pk, loser.pk))
    locked = {lead.pk: lead for lead in Lead.objects.select_for_update().filter(pk__in=(first, second)).order_by("pk")}
    survivor_pk, loser_pk = survivor.pk, loser.pk
    survivor, loser = locked[survivor_pk], locked[loser_pk]
    check_mergeable(survivor, loser)
    now = timezone.now()

    # Events: the same event id on both leads is one event delivered twice; keep the survivor's.
    survivor_event_ids = Event.objects.filter(lead_id=survivor.pk).values("event_id")
    duplicate_events = Event.objects.filter(lead_id=loser.pk, event_id__in=survivor_event_ids)
    dropped = duplicate_events.count()
    if dropped:
        duplicate_events.delete()
    events_moved = Event.objects.filter(lead_id=loser.pk).update(lead_id=survivor.pk)
    touches_moved = Touch.objects.filter(lead_id=loser.pk).update(lead_id=survivor.pk)

    filled: list[str] = []
    for name in (*FILLABLE_FIELDS, *_identity_fields()):
        if _is_empty(getattr(survivor, name)) and not _is_empty(getattr(loser, name)):
            setattr(survivor, name, getattr(loser, name))
            filled.append(name)
    attributes = {**(loser.attributes or {}), **(survivor.attributes or {})}
    if attributes != (survivor.attributes or {}):
        survivor.attributes = attributes
        filled.append("attributes")
    moved_external_id = None
    if not survivor.external_id and loser.external_id:
        # Unique: free it on the loser first, so a CRM upsert by it now finds the survivor.
        moved_external_id = loser.external_id
        Lead.objects.filter(pk=loser.pk).update(external_id=None)
        loser.external_id = None
        survivor.external_id = moved_external_id
        filled.append("external_id")
    if loser.email_opt_out and not survivor.email_opt_out:
        survivor.email_opt_out = True
        survivor.email_opt_out_at = loser.email_opt_out_at or now
        survivor.email_opt_out_source = "merge"
        filled += ["email_opt_out", "email_opt_out_at", "email_opt_out_source"]
    if filled:
        survivor.save(update_fields=[*filled, "updated_at"])

    # A merged lead's clock must not run on: the sweep would recycle or reassign a duplicate.
    if loser.sla_due_at is not None or loser.sla_warn_at is not None:
        lifecycle.close_clocks([loser.pk], now=now)
    Lead.objects.filter(merged_into_id=loser.pk).update(merged_into_id=survivor.pk)
    Lead.objects.filter(pk=loser.pk).update(merged_into_id=survivor.pk, merged_at=now, updated_at=now)
    loser.merged_into_id, loser.merged_at = survivor.pk, now

    details = {
        "survivor": survivor.pk,
        "duplicate": loser.pk,
        "events_moved": events_moved,
        "events_dropped_as_duplicates": dropped,
        "touches_moved": touches_moved,
        "fields_filled": filled,
        "survivor_stage": survivor.stage,
        "duplicate_stage": loser.stage,
    }
    LeadAuditEntry.objects.create(
        lead=survivor,
        other_lead=loser,
        action=PeopleAction.MERGE,
        at=now,
        actor_type=by.type,
        actor_id=by.user_id,
        details=details,
    )
    # Behaviour is recomputed from the survivor's events, now including the loser's; a score
    # that qualifies promotes it through the lifecycle, as any rescoring would.
    scoring.rescore_leads([survivor.pk], now=now)
    survivor.refresh_from_db()
    return details


def merged_lead_ids(lead: Lead) -> list[int]:
    """The lead's id and those of every lead merged into it (directly or through a chain)."""
    ids = [lead.pk]
    frontier = [lead.pk]
    while frontier:
        frontier = list(
            Lead.objects.filter(Q(merged_into_id__in=frontier)).exclude(pk__in=ids).values_list("pk", flat=True)
        )
        ids.extend(frontier)
    return ids


def merged_redirects(lead_ids: set[int]) -> dict[int, int]:
    """{merged lead id: survivor id} for those of `lead_ids` that were merged (one query)."""
    if not lead_ids:
        return {}
    return dict(Lead.objects.filter(pk__in=lead_ids, merged_into__isnull=False).values_list("pk", "merged_into_id"))
