"""Per-process copies of a few small, rarely edited tables (SLA policies, webhook
subscriptions), kept while their rows are unchanged.

The caller reads the rows' versions (PostgreSQL's ``xmin`` and ``ctid``: any edit, by any
process, writes a new one) in a query it runs anyway, and `unless_changed` reads the rows
themselves again only when those versions differ from the ones last seen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connection

T = TypeVar("T")


def unless_changed(store: dict[Any, tuple[Any, Any]], versions: Any, read: Callable[[], T]) -> T:
    """`read()` as last read on this database, or again if `versions` changed since."""
    where = (connection.alias, connection.settings_dict["NAME"])
    seen = store.get(where)
    if seen is None or seen[0] != versions:
        # Read after the versions: if an edit lands in between, the next call sees a newer
        # version than the one stored here and reads again.
        seen = (versions, read())
        store[where] = seen
    return seen[1]
