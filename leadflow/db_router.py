"""Report reads on a read replica.

With `DATABASE_REPLICA_URL` set, settings add the database alias `replica` and this router:
inside `report_reads()` (the report API and the dashboard wrap their selectors in it) every
ORM read goes to the replica, and the reports' raw SQL asks `report_alias()` for its
connection. Everything else — writes, the read model's catch-up, reads outside reports — stays
on `default`, so nothing that decides a write reads a lagging copy. Without the setting the
router is not installed and `report_alias()` is always `default`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

REPLICA = "replica"

_reading_reports: contextvars.ContextVar[bool] = contextvars.ContextVar("reading_reports", default=False)


@contextmanager
def report_reads() -> Iterator[None]:
    """Reads inside go to the replica (when there is one)."""
    token = _reading_reports.set(True)
    try:
        yield
    finally:
        _reading_reports.reset(token)


def report_alias() -> str:
    """The database alias a report's query runs on here and now."""
    if _reading_reports.get() and REPLICA in settings.DATABASES:
        return REPLICA
    return DEFAULT_DB_ALIAS


class ReportReplicaRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return REPLICA if report_alias() == REPLICA else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return True  # the replica is a copy of default: the same rows

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return db != REPLICA  # the replica gets default's schema by replication
