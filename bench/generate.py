"""Fill a PostgreSQL database with a realistic LeadFlow workload for the benchmarks.

    .venv/bin/python bench/generate.py                      # 1,000,000 leads into leadflow_bench
    .venv/bin/python bench/generate.py --leads 20000 --database lf_bench_me

Creates the database if missing, migrates it, empties the lead tables, then COPYs leads,
~10 behaviour events per lead, stage history and touches in realistic proportions: most leads
never reach MQL, ~25 % of MQLs reach SQL, and the current stage, owner and `sla_due_at` agree
with the history (open MQLs/SALs mostly due in the future, a few overdue). Non-primary-key
indexes and constraints are dropped during the COPY and rebuilt afterwards (one sort instead of
ten million index insertions), then the tables are VACUUMed and ANALYZEd. Prints rows/s and wall time.
When it fills `leadflow_bench`, it touches var/bench-ready for the other benchmarks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LEAD_TABLES = ["leads_event", "leads_stagetransition", "leads_touch", "leads_lead"]
CHUNK = 20_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="leadflow_bench")
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events-per-lead", type=float, default=10.0)
    parser.add_argument("--host", default=os.environ.get("PGHOST", "127.0.0.1"))
    parser.add_argument("--port", default=os.environ.get("PGPORT", "5432"))
    parser.add_argument("--user", default=os.environ.get("PGUSER", "postgres"))
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args()


def ensure_database(args: argparse.Namespace) -> None:
    import psycopg2

    conn = psycopg2.connect(host=args.host, port=args.port, user=args.user, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{args.database}"')
            print(f"created database {args.database}")
    conn.close()


def setup_django(args: argparse.Namespace) -> None:
    os.environ["DATABASE_URL"] = f"postgres://{args.user}@{args.host}:{args.port}/{args.database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
    import django

    django.setup()
    from django.core.management import call_command

    print("migrating...")
    call_command("migrate", verbosity=0, interactive=False)


def seed_people(rng: random.Random) -> dict:
    """Demo users, calendar, policies, definition, plus 5 teams of 8 reps for a big org."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group

    from leads.management.commands import seed_demo
    from leads.models import Team, TeamMembership

    users = seed_demo.seed_users()
    seed_demo.seed_teams(users=users)
    seed_demo.seed_sla()
    seed_demo.seed_definition(users=users)
    User = get_user_model()
    rep_group = Group.objects.get(name="sales_rep")
    password = make_password("demo")
    extra = {"APAC": ["AU", "IN", "JP", "SG"], "LATAM": ["BR", "MX", "AR"]}
    for name, territories in extra.items():
        Team.objects.get_or_create(name=name, defaults={"territories": territories, "manager": users["manager"]})
    for team in Team.objects.all():
        have = TeamMembership.objects.filter(team=team).count()
        for i in range(have, 8):
            username = f"{team.name.lower().replace(' ', '')}-rep{i + 1}"
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@leadflow.example", "password": password}
            )
            if created:
                user.groups.add(rep_group)
            TeamMembership.objects.get_or_create(team=team, user=user)
    teams = {}
    for team in Team.objects.all():
        reps = list(TeamMembership.objects.filter(team=team).order_by("id").values_list("user_id", flat=True))
        teams[team.pk] = {"territories": set(team.territories or []), "fallback": team.is_fallback, "reps": reps}
    return teams


class Tables:
    """Drop secondary indexes and constraints for the load; put them back afterwards."""

    def __init__(self, cur, tables: list[str]) -> None:
        self.cur, self.tables, self.restore_sql = cur, tables, []

    def drop(self) -> None:
        cur = self.cur
        for table in self.tables:
            cur.execute(
                """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                   WHERE conrelid = %s::regclass AND contype IN ('f', 'u', 'c')""",
                [table],
            )
            for name, definition in cur.fetchall():
                self.restore_sql.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
                cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            cur.execute(
                """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
                   FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT i.indisprimary""",
                [table],
            )
            for name, definition in cur.fetchall():
                self.restore_sql.insert(0, definition)
                cur.execute(f"DROP INDEX {name}")

    def restore(self, progress) -> None:
        for sql in progress(self.restore_sql, desc="rebuilding indexes", unit="index"):
            self.cur.execute(sql)


def ts(moment: dt.datetime) -> str:
    return moment.isoformat()


def generate(args: argparse.Namespace) -> list[tuple[str, int, float]]:
    import psycopg2
    from django.db import connection
    from tqdm import tqdm

    from sla.models import SlaPolicy

    rng = random.Random(args.seed)
    teams = seed_people(rng)
    from leads.management.commands.seed_demo import (
        COMPANY_SUFFIXES,
        COMPANY_WORDS,
        COUNTRIES,
        FIRST_NAMES,
        INDUSTRIES,
        JOB_TITLES,
        LAST_NAMES,
        PAGES,
        SOURCES,
    )
    from leads.models import SlaClock

    policies = {p.clock: p for p in SlaPolicy.objects.select_related("calendar")}
    connection.close()

    country_values, country_weights = zip(*COUNTRIES, strict=False)
    source_values, source_weights = zip(*SOURCES, strict=False)
    title_values, title_weights = zip(*JOB_TITLES, strict=False)
    team_by_country = {}
    fallback = next(pk for pk, t in teams.items() if t["fallback"])
    for pk, team in teams.items():
        for country in team["territories"]:
            team_by_country[country] = pk
    event_kinds = ["page_view", "email_open", "webinar_attended", "content_download", "form_submit", "demo_request"]
    event_weights = [55, 22, 6, 10, 5, 2]

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    mql_due = policies.get(SlaClock.MQL_DECISION)
    qualify = policies.get(SlaClock.SAL_QUALIFY)

    conn = psycopg2.connect(host=args.host, port=args.port, user=args.user, dbname=args.database)
    cur = conn.cursor()
    cur.execute("SET synchronous_commit = off")
    cur.execute("TRUNCATE " + ", ".join(LEAD_TABLES) + " RESTART IDENTITY CASCADE")
    tables = Tables(cur, LEAD_TABLES)
    tables.drop()
    conn.commit()

    counts = {"leads_lead": 0, "leads_event": 0, "leads_stagetransition": 0, "leads_touch": 0}
    event_id = transition_id = touch_id = 0
    lead_cols = (
        "id, email, first_name, last_name, company, job_title, industry, country, employees, "
        "annual_revenue, source, attributes, stage, stage_entered_at, owner_id, team_id, "
        "fit_score, behavior_score, scored_at, sla_due_at, sla_clock, first_touch_at, "
        "recycle_count, created_at, updated_at"
    )
    event_cols = "id, lead_id, type, occurred_at, properties, event_id, received_at"
    transition_cols = (
        "id, lead_id, from_stage, to_stage, at, actor_type, actor_id, reason, note, "
        "fit_score, behavior_score, definition_version, owner_id, bant, assignment"
    )
    touch_cols = "id, lead_id, user_id, kind, outcome, note, at"
    bant_yes = json.dumps({k: {"value": True, "note": ""} for k in ("budget", "authority", "need", "timeline")})
    N = "\\N"
    started = time.monotonic()
    try:
        bar = tqdm(total=args.leads, unit="lead", desc="leads", smoothing=0.05)
        for chunk_start in range(1, args.leads + 1, CHUNK):
            leads, events, trans, touches = io.StringIO(), io.StringIO(), io.StringIO(), io.StringIO()
            chunk_end = min(chunk_start + CHUNK, args.leads + 1)
            for lead_id in range(chunk_start, chunk_end):
                r = rng.random
                created = now - dt.timedelta(seconds=r() * 365 * 86400)
                country = rng.choices(country_values, country_weights)[0]
                team_id = team_by_country.get(country, fallback)
                reps = teams[team_id]["reps"]
                owner = reps[int(r() * len(reps))] if reps else None
                age_h = (now - created).total_seconds() / 3600
                # The story: (stage, at, reason, actor_type, actor) steps after creation.
                steps: list[tuple[str, dt.datetime, str, str, object]] = []
                if r() < 0.12 and age_h > 2:
                    mql_at = created + dt.timedelta(hours=r() * min(age_h * 0.5, 24 * 60))
                    steps.append(("mql", mql_at, "hand_raiser" if r() < 0.2 else "score", "system", None))
                    waited = (now - mql_at).total_seconds() / 3600
                    decide_at = mql_at + dt.timedelta(hours=0.5 + r() * 40)
                    # Open MQLs: almost all entered within the decision window; ~1 in 30 overdue.
                    stays_open = waited < 40 or (waited < 24 * 10 and r() < 0.03)
                    if not stays_open and decide_at < now:
                        x = r()
                        if x < 0.68:
                            steps.append(("sal", decide_at, "", "user", owner))
                            sal_waited = (now - decide_at).total_seconds() / 3600
                            end_at = decide_at + dt.timedelta(hours=24 + r() * 300)
                            if sal_waited > 14 * 24 or (end_at < now and r() < 0.7):
                                y = r()
                                end_at = min(end_at, now - dt.timedelta(minutes=1))
                                if y < 0.37:  # 0.68 * 0.37 ≈ 25 % of MQLs reach SQL
                                    steps.append(("sql", end_at, "", "user", owner))
                                    close_at = end_at + dt.timedelta(hours=48 + r() * 1200)
                                    if close_at < now:
                                        won = r() < 0.35
                                        steps.append(
                                            ("won" if won else "lost", close_at, "won" if won else "lost", "api", None)
                                        )
                                elif y < 0.85:
                                    reason = (
                                        "sla_expired"
                                        if r() < 0.2
                                        else rng.choice(
                                            ["no_budget", "bad_timing", "no_need", "unable_to_reach", "other"]
                                        )
                                    )
                                    steps.append(
                                        (
                                            "recycled",
                                            end_at,
                                            reason,
                                            "system" if reason == "sla_expired" else "user",
                                            None if reason == "sla_expired" else owner,
                                        )
                                    )
                                else:
                                    steps.append(("disqualified", end_at, "not_a_fit", "user", owner))
                        elif x < 0.9:
                            steps.append(
                                ("recycled", decide_at, rng.choice(["bad_timing", "no_budget", "other"]), "user", owner)
                            )
                        else:
                            steps.append(
                                (
                                    "disqualified",
                                    decide_at,
                                    rng.choice(["not_a_fit", "inaccurate_data", "duplicate", "spam"]),
                                    "user",
                                    owner,
                                )
                            )
                stage, entered = ("lead", created) if not steps else (steps[-1][0], steps[-1][1])
                lead_owner = owner if stage in ("mql", "sal", "sql", "won", "lost") else None
                lead_team = team_id if steps else None
                fit = round(r() * 100, 1) if not steps else round(50 + r() * 50, 1)
                behavior = round(r() * 45, 1) if not steps else round(40 + r() * 60, 1)
                due, clock, first_touch = N, "", N
                if stage == "mql" and mql_due is not None:
                    due, clock = ts(mql_due.due_from(entered)), SlaClock.MQL_DECISION.value
                elif stage == "sal" and qualify is not None:
                    first_touch = ts(entered + dt.timedelta(minutes=5 + r() * 50))
                    due, clock = ts(qualify.due_from(entered)), SlaClock.SAL_QUALIFY.value
                recycles = sum(1 for s in steps if s[0] == "recycled")
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                company = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)}"
                leads.write(
                    "\t".join(
                        (
                            str(lead_id),
                            f"lead{lead_id}@{company.lower().replace(' ', '')}{lead_id % 997}.example",
                            first,
                            last,
                            company,
                            rng.choices(title_values, title_weights)[0],
                            rng.choice(INDUSTRIES),
                            country,
                            str(rng.choice((8, 25, 60, 150, 400, 1200, 5000, 20000))),
                            str(rng.choice((500000, 2000000, 15000000, 80000000))),
                            rng.choices(source_values, source_weights)[0],
                            "{}",
                            stage,
                            ts(entered),
                            str(lead_owner) if lead_owner else N,
                            str(lead_team) if lead_team else N,
                            str(fit),
                            str(behavior),
                            ts(now),
                            due,
                            clock,
                            first_touch,
                            str(recycles),
                            ts(created),
                            ts(now),
                        )
                    )
                    + "\n"
                )
                previous = "lead"
                for to_stage, at, reason, actor_type, actor in steps:
                    transition_id += 1
                    trans.write(
                        "\t".join(
                            (
                                str(transition_id),
                                str(lead_id),
                                previous,
                                to_stage,
                                ts(at),
                                actor_type,
                                str(actor) if actor else N,
                                reason,
                                "",
                                str(fit),
                                str(behavior),
                                "1",
                                str(owner) if owner and to_stage in ("mql", "sal", "sql", "won", "lost") else N,
                                bant_yes if to_stage == "sql" else "{}",
                                "{}",
                            )
                        )
                        + "\n"
                    )
                    previous = to_stage
                    if to_stage == "sal" and owner:
                        for k in range(1 + int(r() * 5)):
                            touch_id += 1
                            kind = "call" if k % 2 == 0 else "email"
                            touches.write(
                                f"{touch_id}\t{lead_id}\t{owner}\t{kind}\t"
                                f"{'connected' if kind == 'call' else 'replied'}\t\t"
                                f"{ts(min(at + dt.timedelta(hours=1 + k * 20), now))}\n"
                            )
                n_events = int(r() * 2 * args.events_per_lead + 0.5)
                span = max((now - created).total_seconds(), 60)
                for k in range(n_events):
                    event_id += 1
                    at = ts(created + dt.timedelta(seconds=r() * span))
                    kind = rng.choices(event_kinds, event_weights)[0]
                    props = '{"url": "' + PAGES[int(r() * len(PAGES))] + '"}' if kind == "page_view" else "{}"
                    events.write(f"{event_id}\t{lead_id}\t{kind}\t{at}\t{props}\tb-{lead_id}-{k}\t{at}\n")
            for table, cols, buffer in (
                ("leads_lead", lead_cols, leads),
                ("leads_event", event_cols, events),
                ("leads_stagetransition", transition_cols, trans),
                ("leads_touch", touch_cols, touches),
            ):
                counts[table] += buffer.getvalue().count("\n")
                buffer.seek(0)
                cur.copy_expert(f"COPY {table} ({cols}) FROM STDIN", buffer)
            conn.commit()
            bar.update(chunk_end - chunk_start)
        bar.close()
        load_seconds = time.monotonic() - started
    finally:
        # Even after a failed load the table gets its indexes and constraints back.
        conn.rollback()
        index_started = time.monotonic()
        tables.restore(lambda items, **kw: tqdm(items, **kw))
        conn.commit()
    index_seconds = time.monotonic() - index_started
    for table in LEAD_TABLES:
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT MAX(id) FROM {table}), 1))"
        )
    conn.commit()
    # VACUUM as well as ANALYZE: what autovacuum would have done to a live database by now (hint
    # bits set, the visibility map filled for index-only scans). Without it, the first benchmark
    # to read a page pays for writing it back, and figures depend on which ran first.
    print("VACUUM ANALYZE...")
    conn.autocommit = True
    cur.execute("VACUUM ANALYZE")
    conn.close()
    total = time.monotonic() - started
    rows = sum(counts.values())
    return [
        *[(table, n, None) for table, n in counts.items()],
        ("COPY (all tables)", rows, load_seconds),
        ("index rebuild", None, index_seconds),
        ("total with VACUUM ANALYZE", rows, total),
    ]


def main() -> None:
    args = parse_args()
    wall = time.monotonic()
    ensure_database(args)
    setup_django(args)
    results = generate(args)
    print()
    print(f"{'step':<24}{'rows':>12}{'seconds':>10}{'rows/s':>10}")
    for step, rows, seconds in results:
        print(
            f"{step:<24}{'' if rows is None else f'{rows:,}':>12}"
            f"{'' if seconds is None else f'{seconds:.1f}':>10}"
            f"{'' if rows is None or not seconds else f'{rows / seconds:,.0f}':>10}"
        )
    print(f"wall time: {time.monotonic() - wall:.1f} s")
    if args.database == "leadflow_bench":
        (ROOT / "var").mkdir(exist_ok=True)
        (ROOT / "var" / "bench-ready").touch()
        print("touched var/bench-ready")


if __name__ == "__main__":
    main()
