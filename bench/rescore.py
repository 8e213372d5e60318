"""Benchmark `manage.py rescore --all` on the generated database (a copy: it writes scores and
promotes leads).

    .venv/bin/python bench/rescore.py                       # copies leadflow_bench, drops the copy after
    .venv/bin/python bench/rescore.py --database lf_bench_scoring --no-copy
    .venv/bin/python bench/rescore.py --workers 1           # the ranges one after another

Prints a table: open leads, wall time, leads/s, leads promoted, for a first run (scores change)
and a second run (nothing changes: the cost of a no-op rescore).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="leadflow_bench")
    parser.add_argument("--database", default="leadflow_bench_scoring")
    parser.add_argument("--no-copy", action="store_true", help="Use --database as it is.")
    parser.add_argument("--keep", action="store_true", help="Do not drop the copy afterwards.")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--count-only",
        action="store_true",
        help="Count the leads that would be promoted instead of promoting them (times the "
        "set-based scoring alone; promotions go through leads.lifecycle.promote_batch_to_mql).",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Database connections the rescore's ranges are shared over (default: "
        "scoring.services.RESCORE_WORKERS; 1 runs them one after another).",
    )
    parser.add_argument("--host", default=os.environ.get("PGHOST", "127.0.0.1"))
    parser.add_argument("--user", default=os.environ.get("PGUSER", "postgres"))
    return parser.parse_args()


def copy_database(args: argparse.Namespace) -> None:
    """CREATE DATABASE ... TEMPLATE needs no open session on the source: other benchmarks read
    it, so retry for a while."""
    command = ["createdb", "-h", args.host, "-U", args.user, "-T", args.source, args.database]
    for _attempt in range(200):
        if subprocess.run(command, capture_output=True).returncode == 0:
            return
        time.sleep(1.5)
    raise SystemExit(f"could not copy {args.source}: it stays in use")


def main() -> None:
    args = parse_args()
    if not args.no_copy:
        subprocess.run(["dropdb", "--if-exists", "-h", args.host, "-U", args.user, args.database], check=True)
        print(f"copying {args.source} -> {args.database} ...", flush=True)
        started = time.monotonic()
        copy_database(args)
        print(f"copied in {time.monotonic() - started:.0f} s", flush=True)
    os.environ["DATABASE_URL"] = f"postgres://{args.user}@{args.host}/{args.database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
    import django

    django.setup()
    from scoring import services

    # Time spent promoting (leads.lifecycle.promote_batch_to_mql: assignment, SLA clock, audit
    # rows, webhook outbox) is reported apart from the set-based scoring. With several workers
    # it is summed over them, and "scoring s" is the wall time less promote s / workers.
    promote_seconds = [0.0]
    promote_lock = threading.Lock()
    original_promote = services._promote
    workers = args.workers if args.workers is not None else services.RESCORE_WORKERS

    def timed_promote(*a, **kw):
        started = time.monotonic()
        try:
            return original_promote(*a, **kw)
        finally:
            with promote_lock:
                promote_seconds[0] += time.monotonic() - started

    def count_only(candidates, *, version):
        return len(candidates)

    services._promote = count_only if args.count_only else timed_promote
    rows = []
    try:
        for run in range(1, args.runs + 1):
            last = [0.0]

            def progress(done: int, total: int, last: list[float] = last, run: int = run) -> None:
                if time.monotonic() - last[0] > 5 or done == total:
                    last[0] = time.monotonic()
                    print(f"  run {run}: {done}/{total}", flush=True)

            promote_seconds[0] = 0.0
            started = time.monotonic()
            result = services.rescore_all(progress=progress, workers=workers)
            wall = time.monotonic() - started
            scoring = wall - promote_seconds[0] / workers
            rows.append(
                (
                    run,
                    result["scored"],
                    wall,
                    scoring,
                    result["scored"] / scoring if scoring else 0,
                    result["promoted"],
                    promote_seconds[0],
                )
            )
    finally:
        if not args.no_copy and not args.keep:
            from django.db import connections

            connections.close_all()
            subprocess.run(["dropdb", "-h", args.host, "-U", args.user, args.database], check=True)
    print(
        f"\n{'run':>4} {'open leads':>11} {'wall s':>8} {'scoring s':>10} {'leads/s':>10} "
        f"{'promoted':>9} {'promote s':>10}"
    )
    for run, scored, wall, scoring, rate, promoted, promote in rows:
        print(f"{run:>4} {scored:>11,} {wall:>8.1f} {scoring:>10.1f} {rate:>10,.0f} {promoted:>9,} {promote:>10.1f}")
    print(f"\n({workers} worker{'s' if workers != 1 else ''}; promote s summed over them)")


if __name__ == "__main__":
    main()
