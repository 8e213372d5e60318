"""How a report's queries run: each in a transaction of its own with session settings tuned for
big aggregates, and on PostgreSQL a report's independent queries side by side on a thread and a
connection each (`all_at_once`), so a report takes as long as its slowest query.

Only the reports use this; the rollup's build borrows `report_settings` for its own transaction.
A function with `cheap = True` (a rollup read of a few milliseconds, marked with `@cheap`) is
run inline, never on a thread of its own.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connections, transaction

from .sql import read_connection

_F = TypeVar("_F", bound=Callable[..., Any])


def report_settings() -> None:
    """Session settings for one report query, local to the current transaction (PostgreSQL):

    - JIT off: it compiles these plans (big row estimates) for 100–300 ms, more than the
      queries then take;
    - work_mem 64 MB: the per-lead groupings and percentile sorts of a year on a million leads
      hold a few hundred thousand rows; at the default 4 MB they spill to disk;
    - no parallel workers: in the per-lead grouping joined to the leads (sources), each worker
      built the whole grouping again for its own hash join, three times the work on two cores
      (sources over a year 650 ms serial against 875 ms parallel); no report gained from them.
    """
    with read_connection().cursor() as cursor:
        cursor.execute(
            "SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true),"
            " set_config('max_parallel_workers_per_gather', '0', true)"
        )


def in_report_transaction(query: functools.partial) -> Any:
    """Run `query` in a transaction of its own with `report_settings` (PostgreSQL)."""
    if read_connection().vendor != "postgresql":
        return query()
    with transaction.atomic(using=read_connection().alias):
        report_settings()
        return query()


def tuned(report: Callable[..., dict]) -> Callable[..., dict]:
    """A report that is one query, or a few that depend on each other, in one transaction."""

    @functools.wraps(report)
    def run(**kwargs: Any) -> dict:
        return in_report_transaction(functools.partial(report, **kwargs))

    return run


def cheap(func: _F) -> _F:
    """Mark `func` a rollup read of a few milliseconds: `all_at_once` runs it inline."""
    func.__dict__["cheap"] = True  # the function attribute `all_at_once` reads (untyped on a Callable)
    return func


def all_at_once(*queries: functools.partial) -> list[Any]:
    """The results of a report's independent read-only `queries` (the funnel's stage entries
    and new leads; velocity's three distributions; a grouped report's total and groups), each
    in its own transaction with the report settings.

    On PostgreSQL, outside a caller's transaction, they run at the same time on a connection
    each (threads: the database does the work, on as many cores), so a report takes as long
    as its slowest query instead of their sum. Each reads its own snapshot, a moment apart at
    most, as separate requests would. Inside a transaction (a test, or a caller's atomic block)
    other connections could not see its rows: one after another there.
    """
    if all(getattr(query.func, "cheap", False) for query in queries):
        return [query() for query in queries]  # rollup reads: a few milliseconds each
    connection = read_connection()
    if connection.vendor != "postgresql" or connection.in_atomic_block or len(queries) < 2:
        return [in_report_transaction(query) for query in queries]

    def in_thread(query: functools.partial) -> Any:
        try:
            return in_report_transaction(query)
        finally:
            connections.close_all()

    # The first runs here, on the caller's connection; the others on threads of their own, two
    # at most (the machines this is sized for have two cores).
    with ThreadPoolExecutor(max_workers=min(len(queries) - 1, 2), thread_name_prefix="report") as pool:
        # Each thread reads where the caller reads (the replica inside `report_reads`).
        others = [pool.submit(contextvars.copy_context().run, in_thread, query) for query in queries[1:]]
        first = in_report_transaction(queries[0])
        return [first, *(future.result() for future in others)]
