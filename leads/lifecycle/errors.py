"""The lifecycle's domain errors, and the one table of what HTTP status each code answers with.

Every surface that calls a move (the API, the browser, the admin) maps these the same way, by
`code`, from `HTTP_STATUS`; integrations branch on the code, people read the message.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .table import allowed_moves, allowed_targets

# The moves in words, for messages; the codes (`accept`, `promote_to_mql`) stay as they are.
MOVE_NAMES = {
    "promote_to_mql": gettext_lazy("promote to MQL"),
    "accept": gettext_lazy("accept"),
    "reject": gettext_lazy("reject"),
    "recycle": gettext_lazy("recycle"),
    "disqualify": gettext_lazy("disqualify"),
    "qualify": gettext_lazy("qualify"),
    "close": gettext_lazy("close"),
    "override": gettext_lazy("override"),
    "reassign": gettext_lazy("reassign"),
    "log_touch": gettext_lazy("log a touch on"),
}


class TransitionError(Exception):
    """Base of the lifecycle's domain errors; `code` is the API's stable error code."""

    code = "transition_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidTransition(TransitionError):
    """The move is not allowed from the lead's current stage."""

    code = "invalid_transition"

    def __init__(self, *, lead: Any, move: str, current_stage: str) -> None:
        moves = allowed_moves(current_stage)
        super().__init__(
            _("Cannot %(move)s lead %(lead)s: it is in stage '%(stage)s'. Allowed from '%(stage)s': %(allowed)s.")
            % {
                "move": str(MOVE_NAMES.get(move, move.replace("_", " "))),
                "lead": lead.pk,
                "stage": current_stage,
                "allowed": ", ".join(moves) if moves else _("no moves (final stage)"),
            },
            current_stage=current_stage,
            allowed_moves=moves,
            allowed_stages=allowed_targets(current_stage),
        )
        self.current_stage = current_stage
        self.allowed_moves = moves


class InvalidReason(TransitionError):
    code = "invalid_reason"


class BantIncomplete(TransitionError):
    code = "bant_required"


class TouchesRequired(TransitionError):
    code = "touches_required"


class NoteRequired(TransitionError):
    code = "note_required"


class NotPermitted(TransitionError):
    """The actor may not make this move on this lead (SPEC section 1)."""

    code = "permission_denied"


# TransitionError code -> HTTP status, for the API and the browser alike. A code missing here
# answers 400.
HTTP_STATUS: dict[str, int] = {
    InvalidTransition.code: 409,
    TouchesRequired.code: 409,
    NotPermitted.code: 403,
    InvalidReason.code: 400,
    BantIncomplete.code: 400,
    NoteRequired.code: 400,
}


def http_status(error: TransitionError) -> int:
    return HTTP_STATUS.get(error.code, 400)
