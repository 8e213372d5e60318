"""Glue from the sweep's set-based signals to the webhook outbox (`leads.webhooks`).

A batch of 250,000 breaches must not cost 250,000 subscription look-ups when nobody subscribes,
so each receiver asks once per batch whether anyone listens for the events at hand, and only
then writes outbox rows row by row through the webhook module's own functions.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from leads.signals import stage_changed_batch

from .signals import sla_breached


def _subscribed(events: set[str]) -> bool:
    from leads.webhooks import WebhookSubscription

    return any(
        events & set(events_of)
        for events_of in WebhookSubscription.objects.filter(active=True).values_list("events", flat=True)
    )


@receiver(stage_changed_batch, dispatch_uid="sla.receivers.batch_to_outbox")
def batch_to_outbox(
    sender: Any, *, transitions: Any, to_stages: set[str] | None = None, **kwargs: Any
) -> None:
    from leads import webhooks

    stages = to_stages if to_stages is not None else set(
        transitions.values_list("to_stage", flat=True).distinct()
    )
    events = {str(webhooks.STAGE_EVENTS[s]) for s in stages if s in webhooks.STAGE_EVENTS}
    if not events or not _subscribed(events):
        return
    for transition in transitions.select_related("lead", "lead__owner"):
        webhooks.write_outbox(sender, transition=transition, lead=transition.lead)


@receiver(sla_breached, dispatch_uid="sla.receivers.breaches_to_outbox")
def breaches_to_outbox(sender: Any, *, breaches: Any, **kwargs: Any) -> None:
    from leads import webhooks

    if not _subscribed({webhooks.WebhookEvent.SLA_BREACHED.value}):
        return
    for breach in breaches.select_related("lead", "lead__owner"):
        webhooks.sla_breached(
            lead=breach.lead, clock=breach.clock, due_at=breach.due_at, action=breach.action
        )
