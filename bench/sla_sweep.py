"""SLA sweep timings on a copy of the generated database: nothing due, 10,000 due, 250,000 due.

    .venv/bin/python bench/sla_sweep.py                               # copy of leadflow_bench
    .venv/bin/python bench/sla_sweep.py --source lf_bench_me --copy lf_bench_me_sla --due 1000 5000
    .venv/bin/python bench/sla_sweep.py --due 250000 --workers 1     # one connection, no sharing

The sweep changes data, so it runs on a copy (CREATE DATABASE ... TEMPLATE), dropped afterwards
unless --keep. Policies as SPEC section 4, with the MQL clock recycling on breach (the set-based
path). The generated data has few open clocks, so for each "N due" row the bench puts N open
leads (existing MQLs/SALs first, then leads moved to MQL with an owner of a team) one hour past
their deadline; their warning points are stored as the lifecycle stores them.
Emails go to Django's in-memory backend: counted, not sent. Each N-due sweep starts right after
a CHECKPOINT (the worst case for full-page writes, but the same for every run). Prints a table
and the EXPLAIN of the "nothing due" query, which must use the partial index lead_sla_due_idx.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS_MS = {"nothing due": 10, 10_000: 2_000, 250_000: 15_000}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="leadflow_bench")
    parser.add_argument("--copy", default="leadflow_bench_sla")
    parser.add_argument("--due", type=int, nargs="*", default=[10_000, 250_000])
    parser.add_argument("--repeat", type=int, default=20, help="runs of the nothing-due sweep")
    parser.add_argument("--keep", action="store_true", help="keep the copy afterwards")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="connections a backlog is shared over (default: sla.sweep.SWEEP_WORKERS)",
    )
    parser.add_argument("--host", default=os.environ.get("PGHOST", "127.0.0.1"))
    parser.add_argument("--port", default=os.environ.get("PGPORT", "5432"))
    parser.add_argument("--user", default=os.environ.get("PGUSER", "postgres"))
    return parser.parse_args()


def admin_connection(args):
    import psycopg2

    conn = psycopg2.connect(host=args.host, port=args.port, user=args.user, dbname="postgres")
    conn.autocommit = True
    return conn


def make_copy(args) -> None:
    import psycopg2

    conn = admin_connection(args)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{args.copy}"')
        for attempt in range(30):
            try:
                # FILE_COPY: copied file by file, not written through the WAL (PostgreSQL 15's
                # default), so the copy leaves no gigabytes of WAL to checkpoint during a sweep.
                cur.execute(f'CREATE DATABASE "{args.copy}" TEMPLATE "{args.source}" STRATEGY FILE_COPY')
                break
            except psycopg2.errors.ObjectInUse:
                # TEMPLATE needs no other session on the source; another bench may be reading.
                print(f"  {args.source} is busy, retrying ({attempt + 1}/30)", flush=True)
                time.sleep(2)
        else:
            raise SystemExit(f"could not copy {args.source}: it stays in use")
    conn.close()


def drop_copy(args) -> None:
    from django.db import connections

    connections.close_all()
    conn = admin_connection(args)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{args.copy}"')
    conn.close()


def setup_django(args) -> None:
    os.environ["DATABASE_URL"] = f"postgres://{args.user}@{args.host}:{args.port}/{args.copy}"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def prepare_policies() -> dict:
    from leads.models import SlaClock
    from sla.models import BreachAction, BusinessCalendar, SlaPolicy
    from sla.services import install_default_policies

    calendar = BusinessCalendar.objects.order_by("id").first()
    install_default_policies(calendar=calendar)
    SlaPolicy.objects.filter(clock__in=[SlaClock.MQL_DECISION, SlaClock.SAL_QUALIFY]).update(
        breach_action=BreachAction.RECYCLE, active=True
    )
    SlaPolicy.objects.filter(clock=SlaClock.SAL_FIRST_TOUCH).update(breach_action=BreachAction.NOTIFY, active=True)
    return {p.clock: p for p in SlaPolicy.objects.all()}


def sql(statement: str, params=None):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(statement, params or [])
        return cur.fetchall() if cur.description else cur.rowcount


def store_warning_points() -> None:
    """Generated rows predate `sla_warn_at`: store it as 75 % of each open clock (wall time is
    close enough for placing rows in the index; the sweep only compares it with now)."""
    sql(
        "UPDATE leads_lead SET sla_warn_at = stage_entered_at + (sla_due_at - stage_entered_at) * 0.75, "
        "sla_warned_at = NULL WHERE stage IN ('mql', 'sal') AND sla_due_at IS NOT NULL"
    )
    sql("VACUUM ANALYZE leads_lead")


def quiet_moment():
    """A moment before every open clock's warning point and deadline: nothing to do."""
    from django.utils import timezone

    (earliest,) = sql(
        "SELECT min(LEAST(sla_warn_at, sla_due_at)) FROM leads_lead "
        "WHERE stage IN ('mql', 'sal') AND sla_due_at IS NOT NULL"
    )[0]
    now = timezone.now()
    return min(earliest, now) - dt.timedelta(seconds=1) if earliest else now


def make_due(count: int, *, now: dt.datetime) -> int:
    """Put `count` open leads one hour (plus up to an hour) past their deadline at `now`."""
    have = sql("SELECT count(*) FROM leads_lead WHERE stage IN ('mql', 'sal') AND sla_due_at IS NOT NULL")[0][0]
    if have < count:
        # Move leads from the marketing pool into MQL with a rep of a team, as promotion would.
        sql(
            """
            WITH reps AS (
                SELECT row_number() OVER (ORDER BY id) - 1 AS n, user_id, team_id
                FROM leads_teammembership
            ), picked AS (
                SELECT id, row_number() OVER (ORDER BY id) AS n FROM leads_lead
                WHERE stage IN ('lead', 'recycled') ORDER BY id LIMIT %s
            )
            UPDATE leads_lead l SET stage = 'mql', stage_entered_at = %s - interval '4 days',
                   owner_id = reps.user_id, team_id = reps.team_id, sla_clock = 'mql_decision',
                   sla_due_at = %s + interval '30 days', sla_warn_at = %s + interval '29 days',
                   sla_warned_at = NULL, first_touch_at = NULL
            FROM picked JOIN reps ON reps.n = picked.n %% (SELECT count(*) FROM reps)
            WHERE l.id = picked.id
            """,
            [count - have, now, now, now],
        )
    moved = sql(
        """
        UPDATE leads_lead SET sla_due_at = %s - interval '1 hour' * (1 + random()),
               sla_warn_at = %s - interval '3 hours', sla_warned_at = %s - interval '3 hours'
        WHERE id IN (
            SELECT id FROM leads_lead WHERE stage IN ('mql', 'sal') AND sla_due_at > %s
            ORDER BY sla_due_at LIMIT %s
        )
        """,
        [now, now, now, now, count],
    )
    sql("VACUUM ANALYZE leads_lead")
    return moved


def explain_nothing_due(now) -> str:
    from django.db import transaction

    from leads.models import CLOCKED_STAGES, Lead

    with transaction.atomic():
        qs = (
            Lead.objects.filter(stage__in=CLOCKED_STAGES, sla_due_at__isnull=False, sla_due_at__lte=now)
            .order_by("sla_due_at", "id")
            .select_for_update(skip_locked=True, of=("self",))
            .values("id", "stage", "sla_clock", "sla_due_at", "owner_id", "team_id")[:5000]
        )
        return qs.explain(analyze=True, buffers=True)


def main() -> None:
    args = parse_args()
    print(f"copying {args.source} -> {args.copy}", flush=True)
    make_copy(args)
    try:
        setup_django(args)
        from django.core import mail

        from sla.sweep import run_sweep

        prepare_policies()
        store_warning_points()
        total = sql("SELECT count(*) FROM leads_lead")[0][0]
        print(f"{total:,} leads in {args.copy}", flush=True)
        rows = []

        now = quiet_moment()
        run_sweep(now=now)  # warm the connection and the policy cache
        timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = run_sweep(now=now)
            timings.append((time.perf_counter() - started) * 1000)
            assert result.breached_total == 0 and result.warned == 0
        rows.append(("nothing due", 0, 0, statistics.median(timings), max(timings), TARGETS_MS["nothing due"]))
        plan = explain_nothing_due(now)

        for count in args.due:
            moved = make_due(count, now=now)
            mail.outbox = []
            # Every run starts just after a checkpoint: each page's first change then costs a
            # full-page image in the WAL (the worst case), instead of whatever the set-up left.
            sql("CHECKPOINT")
            started = time.perf_counter()
            result = run_sweep(now=now, workers=args.workers)
            elapsed = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            again = run_sweep(now=now, workers=args.workers)
            rerun = (time.perf_counter() - started) * 1000
            print(
                f"  {count:,} due: {result.summary()}; rerun {again.breached_total} breached in {rerun:.1f} ms",
                flush=True,
            )
            rows.append((f"{count:,} due", moved, result.breached_total, elapsed, rerun, TARGETS_MS.get(count)))

        print()
        print(f"{'case':<16}{'made due':>10}{'breached':>10}{'sweep ms':>11}{'max/rerun ms':>14}{'target ms':>11}")
        for case, made, breached, ms, other, target in rows:
            print(
                f"{case:<16}{made:>10,}{breached:>10,}{ms:>11.1f}{other:>14.1f}{(f'{target:,}' if target else '-'):>11}"
            )
        from sla.sweep import SWEEP_WORKERS

        workers = args.workers if args.workers is not None else SWEEP_WORKERS
        print(
            "\n(nothing due: median and max of",
            args.repeat,
            "runs; N due: first run and the no-op rerun;",
            f"{workers} worker{'s' if workers != 1 else ''})",
        )
        print("\nEXPLAIN of the nothing-due claim query:\n" + plan)
        print("\nuses lead_sla_due_idx:", "lead_sla_due_idx" in plan)
    finally:
        if not args.keep:
            drop_copy(args)
            print(f"dropped {args.copy}")


if __name__ == "__main__":
    main()
