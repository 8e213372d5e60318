"""Time the browser pages on a big database: the rep inbox, a lead page, the dashboard.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/leadflow_bench \\
        .venv/bin/python bench/pages.py [--rounds 50] [--rep USERNAME] [--manager USERNAME]

Requests go through Django's test client (the full middleware stack, template rendering, real
SQL), warm: a few untimed rounds first. The database is only read: the connection is put in
read-only mode, sessions live in signed cookies and logging in does not touch `last_login`.
Prints median and 95th percentile per page and the number of SQL queries each page runs.
Target (issue 7): inbox median < 100 ms on the 1M-lead database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")


VERBOSE = False


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page first")
    parser.add_argument("--rep", help="rep to time the inbox for (default: the busiest rep)")
    parser.add_argument("--manager", help="manager for the dashboard (default: the first one)")
    parser.add_argument("--verbose", action="store_true", help="print each page's slowest SQL")
    parser.add_argument(
        "--charts",
        action="store_true",
        help="also time the dashboard's report JSON requests (as the browser makes them)",
    )
    return parser.parse_args()


def setup_django() -> None:
    import django
    from django.conf import settings

    # Read-only run: no session rows, no last_login writes (see below).
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False
    django.setup()
    import warnings

    warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")

    from django.contrib.auth.models import update_last_login
    from django.contrib.auth.signals import user_logged_in
    from django.db.backends.signals import connection_created

    user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")

    def read_only(sender, connection, **kwargs) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")

    connection_created.connect(read_only, weak=False)


def timed(client, url: str, *, rounds: int, warmup: int) -> tuple[list[float], int, int]:
    from django.db import connection

    for _ in range(warmup):
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    sql: list[tuple[float, str]] = []

    def record(execute, statement, params, many, context):
        start = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            sql.append(((time.perf_counter() - start) * 1000, statement))

    with connection.execute_wrapper(record):
        client.get(url)
    if VERBOSE:
        for ms, statement in sorted(sql, reverse=True)[:5]:
            print(f"    {ms:7.1f} ms  {statement[:160]}")
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
    return samples, len(sql), len(response.content)


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> None:
    global VERBOSE
    args = parse_args()
    VERBOSE = args.verbose
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count
    from django.test import Client

    from leads import selectors
    from leads.models import Lead
    from leads.permissions import SALES_MANAGER, SALES_REP

    User = get_user_model()
    if args.rep:
        rep = User.objects.get(username=args.rep)
    else:
        busiest = (
            Lead.objects.filter(stage__in=selectors.INBOX_STAGES, owner__groups__name=SALES_REP)
            .values("owner")
            .annotate(n=Count("id"))
            .order_by("-n")
            .first()
        )
        if busiest is None:
            raise SystemExit("no rep owns an MQL or SAL in this database")
        rep = User.objects.get(pk=busiest["owner"])
    manager = (
        User.objects.get(username=args.manager)
        if args.manager
        else User.objects.filter(groups__name=SALES_MANAGER).order_by("id").first()
    )
    first_lead = selectors.inbox_leads(rep).first()
    if first_lead is None:
        raise SystemExit(f"{rep.username}'s inbox is empty")

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"leads: {Lead.objects.count():,} (estimate from count(*))")
    inbox_size = selectors.inbox_leads(rep).count()
    print(
        f"rep: {rep.username}, inbox rows: {inbox_size:,}; lead page: lead {first_lead.pk} "
        f"({first_lead.events.count()} events, {first_lead.transitions.count()} transitions)"
    )

    rep_client = Client()
    rep_client.force_login(rep)
    pages = [
        ("inbox", rep_client, "/inbox/"),
        ("inbox page 2", rep_client, "/inbox/?page=2"),
        ("inbox, stage=sal", rep_client, "/inbox/?stage=sal"),
        ("lead page", rep_client, f"/leads/{first_lead.pk}/"),
    ]
    if manager is not None:
        manager_client = Client()
        manager_client.force_login(manager)
        pages.append(("dashboard (page)", manager_client, "/dashboard/"))
        if args.charts:
            import datetime as dt

            from django.utils import timezone

            today = timezone.localdate()
            query = f"from={(today - dt.timedelta(days=89)).isoformat()}&to={today.isoformat()}"
            for report in ("funnel", "efficiency", "velocity", "rejections", "commitment"):
                pages.append((f"  chart: {report}", manager_client, f"/api/v1/reports/{report}/?{query}"))
    else:
        print("no sales manager in this database: dashboard skipped")

    header = f"{'page':<22} {'rounds':>6} {'median ms':>10} {'p95 ms':>8} {'queries':>8} {'KiB':>6}"
    print()
    print(header)
    print("-" * len(header))
    for name, client, url in pages:
        samples, queries, size = timed(client, url, rounds=args.rounds, warmup=args.warmup)
        print(
            f"{name:<22} {len(samples):>6} {statistics.median(samples):>10.1f} "
            f"{p95(samples):>8.1f} {queries:>8} {size / 1024:>6.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
