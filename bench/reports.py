"""Time each report for a 90-day and a 365-day range on a big database, warm.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/leadflow_bench \\
        .venv/bin/python bench/reports.py [--rounds 5]

Each report is called through its selector (the same function the API and the dashboard call)
for the 90 and 365 days ending at the newest stage change; one untimed call first. Prints the
median and slowest time per report and range, computed live and (count reports) from the read
model, which it catches up first (timed), and whether both gave the same result. Target (issue 6): each
≤ 300 ms warm live, ≤ 20 ms from the read model.

Lead data is only read; the read model is caught up. The first velocity run fills the reports app's business-day and
half-day tables for the SLA calendar (~12,000 and ~34,000 small rows) if they are missing or
stale: a cache of the calendar, not lead data. Migrate the database first (the reports read
those tables and use the indexes of the latest migrations).

Without the generated database, `--fill N` writes N synthetic leads with about four stage
changes each into the database of DATABASE_URL (refused for leadflow_bench), e.g.

    createdb -h 127.0.0.1 -U postgres lf_bench_reports
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lf_bench_reports .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lf_bench_reports .venv/bin/python bench/reports.py --fill 1000000
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
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

FILL_SQL = [
    # Reps, a team and the SLA policies the velocity report measures against.
    """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
           is_staff, is_active, date_joined)
       SELECT '!', false, 'bench_rep' || g, '', '', 'bench_rep' || g || '@example.com', false, true, now()
       FROM generate_series(1, 20) g ON CONFLICT (username) DO NOTHING""",
    """INSERT INTO leads_team (name, territories, is_fallback) VALUES ('Bench', '["US"]', true)
       ON CONFLICT (name) DO NOTHING""",
    """INSERT INTO sla_businesscalendar (name, timezone, working_days, work_start, work_end, holidays)
       SELECT 'Bench office', 'UTC', '[0,1,2,3,4]', '09:00', '17:00', '[]'
       WHERE NOT EXISTS (SELECT 1 FROM sla_businesscalendar)""",
    """INSERT INTO sla_slapolicy (name, stage, clock, calendar_id, duration_hours, business_time,
           warning_share, breach_action, escalate_to_manager, min_calls, min_emails, window_days,
           bant_required, active)
       SELECT v.name, v.stage, v.clock, (SELECT min(id) FROM sla_businesscalendar), v.hours, true,
              0.75, 'notify', true, 0, 0, 14, 4, true
       FROM (VALUES ('Decide on MQL', 'mql', 'mql_decision', 16.0),
                    ('First touch', 'sal', 'sal_first_touch', 8.0)) AS v(name, stage, clock, hours)
       ON CONFLICT (clock) DO NOTHING""",
    # Leads created over two years; r is a per-lead random number that decides its path.
    """CREATE TEMP TABLE fill AS
       SELECT g AS n, random() AS r,
              now() - interval '730 days' * random() AS created,
              (SELECT id FROM auth_user WHERE username = 'bench_rep' || (1 + g % 20)) AS owner_id,
              (ARRAY['webinar','ads','seo','events','partner'])[1 + g % 5] AS source,
              (ARRAY['US','CA','DE','FR'])[1 + g % 4] AS country
       FROM generate_series(1, %(n)s) g""",
    """INSERT INTO leads_lead (email, first_name, last_name, company, job_title, industry, country,
           source, attributes, stage, stage_entered_at, owner_id, team_id, fit_score, behavior_score,
           sla_clock, recycle_count, created_at, updated_at)
       SELECT 'bench' || n || '-' || extract(epoch from now())::bigint || '@example.com', '', '', '', '', '',
              country, source, '{}', 'lead', created, owner_id, (SELECT id FROM leads_team WHERE name = 'Bench'),
              0, 0, '', 0, created, created
       FROM fill""",
    """CREATE TEMP TABLE fill_leads AS
       SELECT l.id AS lead_id, f.* FROM leads_lead l
       JOIN fill f ON l.email LIKE 'bench' || f.n || '-%%' AND l.created_at = f.created""",
    """INSERT INTO leads_stagetransition (lead_id, from_stage, to_stage, at, actor_type, reason, note,
           fit_score, behavior_score, owner_id, bant, assignment)
       SELECT lead_id, s.from_stage, s.to_stage, created + s.after, 'system', s.reason, '', 0, 0,
              owner_id, '{}', '{}'
       FROM fill_leads,
       LATERAL (VALUES
           ('lead', 'mql', interval '1 day' * (r * 10), 'score', true),
           ('mql', 'sal', interval '1 day' * (10 + r * 3), '', r < 0.6),
           ('mql', 'recycled', interval '1 day' * (10 + r * 3), 'bad_timing', r >= 0.6 AND r < 0.8),
           ('sal', 'sql', interval '1 day' * (15 + r * 10), '', r < 0.3),
           ('sql', 'won', interval '1 day' * (30 + r * 30), '', r < 0.15),
           ('sql', 'lost', interval '1 day' * (30 + r * 30), 'no_budget', r >= 0.15 AND r < 0.3)
       ) AS s(from_stage, to_stage, after, reason, happens)
       WHERE s.happens""",
    """INSERT INTO leads_touch (lead_id, user_id, kind, outcome, note, at)
       SELECT lead_id, owner_id, 'call', 'connected', '', created + interval '1 day' * (11 + r * 3)
       FROM fill_leads WHERE r < 0.6""",
    "ANALYZE",
]


def fill(count: int) -> None:
    from django.db import connection

    if connection.settings_dict["NAME"] == "leadflow_bench":
        sys.exit("--fill writes leads: use your own database, not leadflow_bench")
    with connection.cursor() as cursor:
        for index, sql in enumerate(FILL_SQL, 1):
            started = time.perf_counter()
            cursor.execute(sql.replace("%(n)s", str(int(count))).replace("%%", "%"))
            print(f"fill step {index}/{len(FILL_SQL)}: {time.perf_counter() - started:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed calls per report and range")
    parser.add_argument("--fill", type=int, metavar="N", help="first write N synthetic leads (own database only)")
    parser.add_argument("--only", nargs="+", metavar="REPORT", help="time only these reports")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.db.models import Max
    from django.test.utils import CaptureQueriesContext, override_settings

    from leads.models import StageTransition
    from reports import readmodel, selectors

    if args.fill:
        fill(args.fill)
    newest = StageTransition.objects.aggregate(newest=Max("at"))["newest"]
    if newest is None:
        sys.exit("no stage changes in this database")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM leads_lead")
        leads = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM leads_stagetransition")
        transitions = cursor.fetchone()[0]
    print(f"database {connection.settings_dict['NAME']}: {leads:,} leads, {transitions:,} stage changes", flush=True)
    end = newest.date()
    started = time.perf_counter()
    progress = readmodel.catch_up()
    print(
        f"read model caught up on {progress.transitions:,} stage changes and {progress.leads:,} leads"
        f" in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    print(
        f"{'report':<12} {'range':>6} {'live median ms':>15} {'max ms':>7} {'queries':>8}"
        f" {'model median ms':>17} {'max ms':>7} {'identical':>10}",
        flush=True,
    )
    for name, report in selectors.REPORTS.items():
        if args.only and name not in args.only:
            continue
        for days in (90, 365):
            kwargs = {
                "date_from": end - dt.timedelta(days=days - 1),
                "date_to": end,
                "filters": selectors.ReportFilters(),
            }
            with override_settings(REPORTS_READ_MODEL=False):
                expected = report(**kwargs)  # warm: caches, plans, the business-day table
                with CaptureQueriesContext(connection) as ctx:
                    report(**kwargs)
                live = timed(report, kwargs, args.rounds)
            queries = len(ctx.captured_queries)
            line = f"{name:<12} {days:>4} d {statistics.median(live):>15.0f} {max(live):>7.0f} {queries:>8}"
            if name in ROLLUP_REPORTS:
                same = report(**kwargs) == expected
                rolled = timed(report, kwargs, args.rounds)
                line += f" {statistics.median(rolled):>17.1f} {max(rolled):>7.1f} {'yes' if same else 'NO':>10}"
            print(line, flush=True)


ROLLUP_REPORTS = ("funnel", "efficiency", "sources", "rejections", "commitment")


def timed(report, kwargs: dict, rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        report(**kwargs)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


if __name__ == "__main__":
    main()
