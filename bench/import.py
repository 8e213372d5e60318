"""Rows/s and peak memory of the historical import: a CSV in the SPEC section 9 format (phone
numbers validated with libphonenumber, every row validated before any is written, matching by
external_id, email and phone), then the same file again (re-import, which must change nothing).

    .venv/bin/python bench/import.py [--database lf_bench_api_import] [--rows 200000]

Uses (and recreates) its own PostgreSQL database. Target: >= 5,000 rows/s at 200,000 rows;
peak RSS flat in the file's size (compare --rows 50000 with --rows 500000).
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import tempfile
import time
from pathlib import Path

from apibench import django_setup, fresh_database, table

HEADER = [
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "company",
    "job_title",
    "country",
    "employees",
    "source",
    "owner",
    "created_at",
    "became_mql_at",
    "became_sal_at",
    "became_sql_at",
    "became_won_at",
    "became_recycled_at",
    "rejection_reason",
]


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            day = 1 + i % 28
            row = [
                f"imp-{i}",
                f"imp{i}@bench.example",
                f"+1 415 {200 + i // 10000:03d} {i % 10000:04d}",
                "Ana",
                "Lee",
                f"Acme {i % 500}",
                "VP Sales",
                rng.choice(["US", "DE", "FR", "CA"]),
                str(rng.randint(5, 5000)),
                rng.choice(["webinar", "ads", "organic"]),
                f"old.rep{i % 20}",
                f"2025-01-{day:02d}",
                "",
                "",
                "",
                "",
                "",
                "",
            ]
            r = rng.random()
            if r < 0.30:
                row[12] = f"{day:02d}-02-2025 10:00"
            if r < 0.18:
                row[13] = f"2025-02-{day:02d}T15:00:00Z"
            if r < 0.08:
                row[14] = f"2025-03-{day:02d}"
            if r < 0.03:
                row[15] = f"2025-04-{day:02d}"
            if 0.18 <= r < 0.22:
                row[16], row[17] = f"2025-02-{day:02d}T16:00:00Z", "no_budget"
            if i % 2000 == 0:
                row[1] = "broken-email"
            writer.writerow(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="lf_bench_api_import")
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    env = fresh_database(args.database)
    django_setup(env)
    from leads.models import StageTransition
    from leads.services.importer import import_leads

    path = Path(tempfile.mkdtemp()) / "import.csv"
    write_csv(path, args.rows)
    results = []
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for label in ("first import", "re-import"):
        started = time.perf_counter()
        result = import_leads(path, progress=lambda phase, n: print(f"  {phase} {n:,} rows", end="\r", flush=True))
        elapsed = time.perf_counter() - started
        results.append((label, result, elapsed))
        print()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = [("rows in file", f"{args.rows:,} ({path.stat().st_size / 1e6:.0f} MB)")]
    for label, result, elapsed in results:
        rows.append((f"{label}: rows/s", f"{args.rows / elapsed:,.0f} ({elapsed:.1f}s)"))
        rows.append(
            (
                f"{label}: created/updated/unchanged/rejected",
                f"{result.created}/{result.updated}/{result.unchanged}/{len(result.rejected)}",
            )
        )
    rows.append(("stage transitions written", f"{StageTransition.objects.count():,}"))
    rows.append(("peak RSS before the import (Django loaded)", f"{baseline_kb / 1024:,.0f} MB"))
    rows.append(("peak RSS after both imports", f"{peak_kb / 1024:,.0f} MB"))
    table(rows)


if __name__ == "__main__":
    main()
