"""The lead lifecycle (SPEC section 2): every change of a lead's stage, owner or SLA clock.

- `table` — stages, allowed moves and reasons;
- `errors` — the domain errors and the HTTP status each answers with;
- `core` — the one writer of a lead's state and its `StageTransition` audit rows;
- `moves` — one function per move (accept, reject, qualify, recycle, close, reassign...);
- `promotion` — batch promotion to MQL; `history` — imported history; `expiry` — what an
  expired SLA clock does to a lead.

Callers (views, API, admin, imports, tasks, the sweep) use the names exported here.
"""

from .core import SYSTEM, Actor, send_batch_signal
from .errors import (
    HTTP_STATUS,
    BantIncomplete,
    InvalidReason,
    InvalidTransition,
    NoteRequired,
    NotPermitted,
    TouchesRequired,
    TransitionError,
    http_status,
)
from .expiry import advance_clocks, close_clocks, reassign_expired, recycle_expired
from .history import HistoricalStep, record_history, record_history_batch
from .moves import (
    accept,
    close,
    disqualify,
    log_touch,
    override,
    promote_to_mql,
    qualify,
    reassign,
    recycle,
    reject,
)
from .promotion import promote_batch_to_mql
from .table import (
    BANT_KEYS,
    CLOSE_OUTCOMES,
    DISQUALIFY_REASONS,
    LOST_REASONS,
    PROMOTABLE_STAGES,
    PROMOTION_REASONS,
    RECYCLE_REASONS,
    REJECT_REASONS,
    SLA_EXPIRED,
    allowed_moves,
    allowed_targets,
)

__all__ = [
    "BANT_KEYS",
    "CLOSE_OUTCOMES",
    "DISQUALIFY_REASONS",
    "HTTP_STATUS",
    "PROMOTABLE_STAGES",
    "PROMOTION_REASONS",
    "RECYCLE_REASONS",
    "REJECT_REASONS",
    "SLA_EXPIRED",
    "SYSTEM",
    "Actor",
    "BantIncomplete",
    "LOST_REASONS",
    "HistoricalStep",
    "InvalidReason",
    "InvalidTransition",
    "NotPermitted",
    "NoteRequired",
    "TouchesRequired",
    "TransitionError",
    "accept",
    "advance_clocks",
    "allowed_moves",
    "allowed_targets",
    "close",
    "close_clocks",
    "disqualify",
    "http_status",
    "log_touch",
    "override",
    "promote_batch_to_mql",
    "promote_to_mql",
    "qualify",
    "reassign",
    "reassign_expired",
    "record_history",
    "record_history_batch",
    "recycle",
    "recycle_expired",
    "reject",
    "send_batch_signal",
]
