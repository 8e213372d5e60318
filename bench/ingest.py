"""Events/s through POST /api/v1/events/ (batches of 1,000) against gunicorn on PostgreSQL,
several concurrent clients, scoring on, with a raw COPY baseline measured in the same run.

    .venv/bin/python bench/ingest.py                  # 10,000 events/s offered for 60 s
    .venv/bin/python bench/ingest.py --rate 0         # closed loop: as fast as it goes
    .venv/bin/python bench/ingest.py --inline-scoring # score inside each request instead

Its leads (20,000) start with 10 past events each, so scoring re-reads a history.
Uses (and recreates) its own database, never leadflow_bench. Target: >= 10,000 events/s
sustained for 60 s with p99 <= 150 ms per batch.

The load is open-loop: the clients together send `--rate` events/s on a fixed schedule and a
batch's latency counts from the moment it was due, so a server that falls behind shows it in
the percentiles instead of quietly being sent less (closed-loop clients that wait for each
answer would measure N clients / throughput, whatever the server does). `--rate 0` is that
closed loop, for the saturation throughput.

Scoring runs as in production (SCORING_EVENTS_ASYNC=1): each batch's leads are scored by a Celery
worker on Redis right after the request commits. "Sustained" means the worker kept up too, so
the table reports how long after the last batch its queue was empty, and how many leads the
run promoted to MQL.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import subprocess
import threading
import time
import uuid
from urllib.parse import urlsplit

from apibench import BIN, ROOT, django_setup, fresh_database, percentile, start_gunicorn, table

BROKER = "redis://127.0.0.1:6379/12"

TYPES = ["page_view", "email_open", "email_click", "webinar_attended", "form_submit"]


def copy_baseline(database: str, rows: int) -> float:
    """Rows/s of a raw COPY into a table shaped like leads_event (same indexes)."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT min(id) FROM leads_lead")
        first = cur.fetchone()[0]
        cur.execute("DROP TABLE IF EXISTS bench_copy")
        cur.execute("CREATE TABLE bench_copy (LIKE leads_event INCLUDING ALL)")
        buf = io.StringIO()
        now = "2026-01-01 00:00:00+00"
        for i in range(rows):
            buf.write(f'{i + 1}\t{first + i % 1000}\tpage_view\t{now}\t{{"url": "/pricing"}}\tcopy-{i}\t{now}\n')
        buf.seek(0)
        started = time.perf_counter()
        cur.copy_expert(
            "COPY bench_copy (id, lead_id, type, occurred_at, properties, event_id, received_at) FROM STDIN",
            buf,
        )
        elapsed = time.perf_counter() - started
        cur.execute("DROP TABLE bench_copy")
    conn.close()
    return rows / elapsed


def seed_history(database: str, per_lead: int) -> None:
    """`per_lead` past events for every lead (a live system's leads have a history, which each
    scoring re-reads), then VACUUM ANALYZE: the planner must know the table is not empty, as a
    production server's autovacuum would have told it."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO leads_event (lead_id, type, occurred_at, properties, event_id, received_at) "
            "SELECT l.id, (ARRAY['page_view', 'email_open', 'email_click', 'page_view', 'form_submit'])"
            "[1 + (l.id + g) %% 5], now() - (g * 6 || ' days')::interval, "
            'CASE WHEN (l.id + g) %% 7 = 0 THEN \'{"url": "/pricing"}\' ELSE \'{"url": "/blog"}\' END::jsonb, '
            "'seed-' || l.id || '-' || g, now() FROM leads_lead l, generate_series(1, %s) AS g",
            [per_lead],
        )
        cur.execute("VACUUM ANALYZE")
    conn.close()


def activate_spec_definition(*, marketer) -> None:
    from leads.management.commands.seed_demo import DEFINITION
    from scoring import definitions
    from scoring import services as scoring
    from sla.services import install_default_policies
    from tests.factories import TeamFactory, add_rep, make_user

    install_default_policies()
    manager = make_user("bench-manager", "sales_manager")
    team = TeamFactory(name="Bench US", territories=["US"], is_fallback=True, manager=manager)
    for n in range(5):
        add_rep(team, make_user(f"bench-rep{n}", "sales_rep"))
    definition = definitions.import_definition(DEFINITION, user=marketer)
    definitions.sign_definition(definition, user=marketer)
    definitions.sign_definition(definition, user=manager)
    scoring.activate_definition(definition, user=manager, rescore="now")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="lf_bench_api")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--leads", type=int, default=20000)
    parser.add_argument(
        "--history", type=int, default=10, help="past events per lead stored before the run (spread over 60 days)"
    )
    parser.add_argument(
        "--rate", type=float, default=10000, help="events/s offered by all clients together; 0: closed loop"
    )
    parser.add_argument(
        "--inline-scoring", action="store_true", help="score inside each request (SCORING_EVENTS_ASYNC=0), no worker"
    )
    args = parser.parse_args()

    env = fresh_database(args.database)
    env.update({"CELERY_BROKER_URL": BROKER, "SCORING_EVENTS_ASYNC": "0" if args.inline_scoring else "1"})
    django_setup(env)
    import redis

    queue = redis.Redis.from_url(BROKER)
    queue.flushdb()
    from leads.models import Lead
    from leads.tokens import issue_token
    from tests.factories import make_user

    user = make_user("bench-marketer", "marketing")
    token = issue_token(user=user, name="bench")[1]
    # Scoring on, as in production: the SPEC's definition is active, a third of the leads fit
    # it (title, size, company), so webinars and pricing views promote them to MQL during the
    # run, each assigned round-robin to a rep of the US team with its SLA clock.
    Lead.objects.bulk_create(
        [
            Lead(
                email=f"lead{i}@bench.example",
                external_id=f"b-{i}",
                country="US",
                company=f"Acme {i % 997}",
                job_title="VP Marketing" if i % 3 == 0 else "Analyst",
                employees=500,
            )
            for i in range(args.leads)
        ],
        batch_size=5000,
    )
    seed_history(args.database, args.history)
    activate_spec_definition(marketer=user)
    copy_rate = copy_baseline(args.database, 200_000)
    print(f"COPY baseline: {copy_rate:,.0f} rows/s", flush=True)

    worker = None
    if not args.inline_scoring:
        worker = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "leadflow",
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
        )
    server, base = start_gunicorn(env, workers=args.workers)
    latencies: list[float] = []
    sent = [0]
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds + 3

    # Client i sends at start + i * interval / clients + k * interval (open loop).
    interval = args.clients * args.batch / args.rate if args.rate else 0.0
    begin = time.monotonic() + 1

    def client(seed: int) -> None:
        rng = random.Random(seed)
        parts = urlsplit(base)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        warm_until = time.monotonic() + 3
        due = begin + seed * interval / args.clients
        while time.monotonic() < stop_at:
            batch = []
            for _ in range(args.batch):
                n = rng.randrange(args.leads + args.leads // 10)  # ~9% unknown emails create leads
                ref = {"email": f"lead{n}@bench.example"} if n % 2 else {"external_id": f"b-{n}"}
                if n >= args.leads:
                    ref = {"email": f"lead{n}@bench.example"}
                batch.append(
                    {
                        "lead": ref,
                        "type": rng.choice(TYPES),
                        "event_id": uuid.uuid4().hex,
                        "properties": {"url": "/pricing" if rng.random() < 0.2 else "/blog"},
                    }
                )
            body = json.dumps(batch).encode()
            if interval:
                time.sleep(max(0.0, due - time.monotonic()))
                started = due  # late sends count against the server
                due += interval
            else:
                started = time.monotonic()
            conn.request(
                "POST",
                "/api/v1/events/",
                body=body,
                headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
            )
            response = conn.getresponse()
            response.read()
            elapsed = time.monotonic() - started
            if time.monotonic() < warm_until:
                continue
            with lock:
                if response.status == 201:
                    latencies.append(elapsed)
                    sent[0] += len(batch)
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    started = time.monotonic() + 3
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    last_batch = time.monotonic()
    server.terminate()
    server.wait(timeout=30)
    drained = float("nan")
    if worker is not None:
        # The queue is empty and no task is unacknowledged (acks_late): every batch is scored.
        while time.monotonic() - last_batch < 600:
            if queue.llen("celery") == 0 and queue.hlen("unacked") == 0:
                drained = time.monotonic() - last_batch
                break
            time.sleep(0.2)
        worker.terminate()
        worker.wait(timeout=30)
    from leads.models import Event

    rate = sent[0] / wall
    table(
        [
            ("clients x batch", f"{args.clients} x {args.batch}"),
            ("offered events/s", f"{args.rate:,.0f}" if args.rate else "closed loop"),
            ("gunicorn workers", str(args.workers)),
            ("scoring", "in the request" if args.inline_scoring else "Celery worker (2 processes, as docker-compose)"),
            ("measured seconds", f"{wall:.1f}"),
            ("events stored", f"{Event.objects.count():,}"),
            ("leads promoted to MQL", f"{Lead.objects.filter(stage='mql').count():,}"),
            ("events/s", f"{rate:,.0f}"),
            ("batch p50 ms", f"{percentile(latencies, 0.5) * 1000:.0f}"),
            ("batch p99 ms", f"{percentile(latencies, 0.99) * 1000:.0f}"),
            ("failed batches", str(errors[0])),
            ("scoring queue empty after", "n/a" if args.inline_scoring else f"{drained:.1f} s after the last batch"),
            ("COPY rows/s (same run)", f"{copy_rate:,.0f}"),
            ("share of COPY", f"{rate / copy_rate:.0%}"),
        ]
    )


if __name__ == "__main__":
    main()
