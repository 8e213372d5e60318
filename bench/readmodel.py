"""The report read model's catch-up after a big history import, and report reads from it.

    createdb -h 127.0.0.1 -U postgres lf_bench_rm
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lf_bench_rm .venv/bin/python bench/readmodel.py
    DATABASE_URL=sqlite:///var/bench_rm.sqlite3 DEBUG=1 .venv/bin/python bench/readmodel.py

Migrates the database of DATABASE_URL (refused for leadflow_bench), writes `--rows` stage
changes (default 100,000: a quarter as many leads with four dated changes each, spread over two
years, as an import of history writes them), then times `readmodel.catch_up()` over them:
total seconds, batches, and the longest batch (each batch is one write transaction). Then times
each count report over 365 days from the read model and live (median of `--rounds`), and checks
both give the same numbers. Targets (issue 20): catch-up ≤ 10 s on PostgreSQL and ≤ 30 s on
SQLite for 100k rows; no batch over ~1 s on SQLite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

COUNT_REPORTS = ("funnel", "efficiency", "sources", "rejections", "commitment")
PATHS = [
    ("mql", "sal", "sql", "won"),
    ("mql", "sal", "sql", "lost"),
    ("mql", "recycled", "mql", "disqualified"),
    ("mql", "sal", "recycled", "mql"),
]


def write_history(rows: int, seed: int = 20) -> None:
    from django.db import transaction

    from leads.models import ActorType, Lead, StageTransition

    rng = random.Random(seed)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    chunk = 5_000
    for first in range(0, rows // 4, chunk):
        with transaction.atomic():
            leads = Lead.objects.bulk_create(
                [
                    Lead(
                        email=f"bench-{first + i}-{seed}@example.com",
                        source=rng.choice(["ads", "webinar", "events", "partner"]),
                        country=rng.choice(["US", "DE", "FR", "GB"]),
                        created_at=start + dt.timedelta(hours=rng.randrange(2 * 365 * 24)),
                    )
                    for i in range(min(chunk, rows // 4 - first))
                ]
            )
            moves = []
            for lead in leads:
                at = lead.created_at
                previous = "lead"
                for stage in rng.choice(PATHS):
                    at += dt.timedelta(hours=rng.randrange(1, 240))
                    moves.append(
                        StageTransition(
                            lead=lead, from_stage=previous, to_stage=stage, at=at, actor_type=ActorType.SYSTEM,
                            reason="import",
                        )
                    )  # fmt: skip
                    previous = stage
            StageTransition.objects.bulk_create(moves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="stage changes to import")
    parser.add_argument("--rounds", type=int, default=5, help="timed calls per report")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings

    from reports import readmodel, selectors

    if connection.settings_dict["NAME"] == "leadflow_bench":
        sys.exit("this writes leads: use your own database, not leadflow_bench")
    call_command("migrate", verbosity=0)
    readmodel.catch_up()
    started = time.perf_counter()
    write_history(args.rows)
    written = time.perf_counter() - started

    batches: list[float] = []
    mark = time.perf_counter()

    def on_batch(progress: readmodel.Progress) -> None:
        nonlocal mark
        now = time.perf_counter()
        batches.append(now - mark)
        mark = now

    started = mark = time.perf_counter()
    progress = readmodel.catch_up(on_batch=on_batch)
    caught_up = time.perf_counter() - started

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"{'step':<44} {'value':>12}")
    print(f"{'history written (not the measure)':<44} {written:>10.1f} s")
    print(f"{'stage changes counted':<44} {progress.transitions:>12,}")
    print(f"{'leads counted':<44} {progress.leads:>12,}")
    print(f"{'catch-up total':<44} {caught_up:>10.1f} s")
    print(f"{'batches (one write transaction each)':<44} {len(batches):>12,}")
    print(f"{'longest batch':<44} {max(batches) * 1000:>9.0f} ms")
    print(f"{'median batch':<44} {statistics.median(batches) * 1000:>9.0f} ms")

    end = dt.date(2025, 12, 31)
    kwargs = {"date_from": end - dt.timedelta(days=364), "date_to": end, "filters": selectors.ReportFilters()}
    print(f"\n{'report (365 days)':<20} {'read model ms':>14} {'live ms':>10} {'identical':>10}")
    for name in COUNT_REPORTS:
        report = selectors.REPORTS[name]
        fast = report(**kwargs)
        model = timed(report, kwargs, args.rounds)
        with override_settings(REPORTS_READ_MODEL=False):
            slow = report(**kwargs)
            live = timed(report, kwargs, args.rounds)
        same = "yes" if fast == slow else "NO"
        print(f"{name:<20} {statistics.median(model):>14.1f} {statistics.median(live):>10.1f} {same:>10}")


def timed(report, kwargs: dict, rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        report(**kwargs)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


if __name__ == "__main__":
    main()
