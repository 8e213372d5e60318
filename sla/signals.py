"""Signals of the SLA sweep."""

from django.dispatch import Signal

# Sent inside the sweep's transaction with `breaches`, a queryset of the SlaBreach rows one
# batch wrote (the webhook outbox turns them into `sla.breached` deliveries).
sla_breached = Signal()
