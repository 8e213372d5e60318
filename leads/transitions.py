"""Temporary: the names of the old module, while callers move to `leads.lifecycle`."""

from leads.lifecycle import *  # noqa: F403
from leads.lifecycle import __all__ as _lifecycle_names
from sla.clocks import bant_required, missing_touches  # noqa: F401
from sla.due import ExpiredClock, due_sla_clocks, due_sla_window, expire_sla_batch  # noqa: F401

__all__ = list(_lifecycle_names)
