"""Signals the write path sends inside its transaction.

Receivers run in the same transaction as the change, so what they write (webhook outbox rows,
for one) commits or rolls back with it.
"""

from django.dispatch import Signal

# Sent with `transition` (a StageTransition) and `lead` after every stage change.
stage_changed = Signal()

# Sent once per set-based batch (the SLA sweep, batch promotion to MQL) with `transitions`, a
# queryset of the StageTransition rows the batch wrote. When anything listens here, the batch
# does NOT also send `stage_changed` per row: a batch receiver takes over the per-row receivers'
# work for the set (sla.receivers does it for the webhook outbox). With no batch receiver,
# `stage_changed` is sent per row, so nothing is missed either way.
stage_changed_batch = Signal()
