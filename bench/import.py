"""Rows/s of the historical import: a 100,000-row CSV in the SPEC section 9 format, then the
same file again (re-import, which must change nothing).

    .venv/bin/python bench/import.py [--database lf_bench_api_import] [--rows 100000]

Uses (and recreates) its own PostgreSQL database. Target: >= 5,000 rows/s.
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from pathlib import Path

from apibench import django_setup, fresh_database, table

HEADER = [
    "external_id",
    "email",
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
                row[11] = f"{day:02d}-02-2025 10:00"
            if r < 0.18:
                row[12] = f"2025-02-{day:02d}T15:00:00Z"
            if r < 0.08:
                row[13] = f"2025-03-{day:02d}"
            if r < 0.03:
                row[14] = f"2025-04-{day:02d}"
            if 0.18 <= r < 0.22:
                row[15], row[16] = f"2025-02-{day:02d}T16:00:00Z", "no_budget"
            if i % 2000 == 0:
                row[1] = "broken-email"
            writer.writerow(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="lf_bench_api_import")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    env = fresh_database(args.database)
    django_setup(env)
    from leads.models import StageTransition
    from leads.services.importer import import_leads

    path = Path(tempfile.mkdtemp()) / "import.csv"
    write_csv(path, args.rows)
    results = []
    for label in ("first import", "re-import"):
        with path.open(newline="") as handle:
            started = time.perf_counter()
            result = import_leads(handle, progress=lambda n: print(f"  {n:,} rows", end="\r", flush=True))
            elapsed = time.perf_counter() - started
        results.append((label, result, elapsed))
        print()
    rows = [("rows in file", f"{args.rows:,}")]
    for label, result, elapsed in results:
        rows.append((f"{label}: rows/s", f"{args.rows / elapsed:,.0f} ({elapsed:.1f}s)"))
        rows.append(
            (
                f"{label}: created/updated/unchanged/rejected",
                f"{result.created}/{result.updated}/{result.unchanged}/{len(result.rejected)}",
            )
        )
    rows.append(("stage transitions written", f"{StageTransition.objects.count():,}"))
    table(rows)


if __name__ == "__main__":
    main()
