"""Accept/reject latency through the API with 50 concurrent reps, each acting on their own MQLs.

    .venv/bin/python bench/accept.py [--database lf_bench_api_accept] [--reps 50] [--leads-per-rep 40]
        [--think 1.0] [--think 0] [--workers 3] [--threads 1]

Uses (and recreates) its own database. Target: p99 <= 50 ms.

gunicorn runs as production runs it: docker-compose.yml and the Dockerfile start 3 sync workers
(WEB_CONCURRENCY, default 3; no --threads), so that is the default here.

Each rep is a thread with its own connection and token. By default a rep pauses about a second
(0.5-1.5 s, random) between two clicks, as people at an inbox do: 50 reps then offer ~50
requests/s and the figures are the latency each of them sees. `--think 0` makes all 50 fire
back to back with no pause, which measures saturation throughput instead: with 50 requests
always in flight, latency is 50 / throughput by Little's law whatever the code does.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import tempfile
import threading
import time
from urllib.parse import urlsplit

from apibench import django_setup, fresh_database, percentile, server_times, start_gunicorn, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="lf_bench_api_accept")
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--leads-per-rep", type=int, default=40)
    parser.add_argument(
        "--workers", type=int, default=3, help="gunicorn workers (production: WEB_CONCURRENCY, default 3)"
    )
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (production: 1, sync workers)")
    parser.add_argument(
        "--think", type=float, default=1.0, help="mean seconds a rep pauses between two actions (0: none)"
    )
    args = parser.parse_args()

    env = fresh_database(args.database)
    django_setup(env)
    from leads.models import Lead, Stage
    from leads.tokens import issue_token
    from tests.factories import TeamFactory, add_rep, make_user

    team = TeamFactory(name="Bench", territories=["US"], is_fallback=True)
    work: list[tuple[str, list[int]]] = []
    for r in range(args.reps):
        rep = make_user(f"rep{r}", "sales_rep")
        add_rep(team, rep)
        leads = Lead.objects.bulk_create(
            [
                Lead(email=f"r{r}-{i}@bench.example", country="US", stage=Stage.MQL, owner=rep, team=team)
                for i in range(args.leads_per_rep)
            ]
        )
        work.append((issue_token(user=rep, name="bench")[1], [lead.pk for lead in leads]))

    # Production logs every request too (docker-compose.yml: --access-logfile -).
    with tempfile.NamedTemporaryFile(prefix="lf-accept-", suffix=".log", delete=False) as log_file:
        access_log = log_file.name
    server, base = start_gunicorn(env, workers=args.workers, threads=args.threads, access_log=access_log)
    latencies: dict[str, list[float]] = {"accept": [], "reject": []}
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(args.reps)

    def rep_session(token: str, lead_ids: list[int]) -> None:
        parts = urlsplit(base)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        pause = random.Random(token)
        barrier.wait()
        if args.think:
            time.sleep(pause.uniform(0, args.think))  # reps do not all click at the same instant
        for n, lead_id in enumerate(lead_ids):
            if n and args.think:
                time.sleep(pause.uniform(0.5, 1.5) * args.think)
            move = "accept" if n % 2 == 0 else "reject"
            body = json.dumps({} if move == "accept" else {"reason": "no_budget"}).encode()
            started = time.perf_counter()
            conn.request(
                "POST",
                f"/api/v1/leads/{lead_id}/{move}/",
                body=body,
                headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
            )
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies[move].append(elapsed)
                statuses[response.status] = statuses.get(response.status, 0) + 1

    threads = [threading.Thread(target=rep_session, args=item) for item in work]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    server.terminate()
    server.wait(timeout=30)
    everything = latencies["accept"] + latencies["reject"]
    served = server_times(access_log)
    table(
        [
            ("concurrent reps", str(args.reps)),
            ("think time", f"{args.think:g} s between a rep's actions" if args.think else "none (saturation)"),
            ("gunicorn", f"{args.workers} workers x {args.threads} threads"),
            ("requests", f"{len(everything):,} in {wall:.1f}s ({len(everything) / wall:,.0f}/s)"),
            ("statuses", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))),
            (
                "accept p50 / p99 ms",
                f"{percentile(latencies['accept'], 0.5) * 1000:.0f} / "
                f"{percentile(latencies['accept'], 0.99) * 1000:.0f}",
            ),
            (
                "reject p50 / p99 ms",
                f"{percentile(latencies['reject'], 0.5) * 1000:.0f} / "
                f"{percentile(latencies['reject'], 0.99) * 1000:.0f}",
            ),
            ("all p99 ms", f"{percentile(everything, 0.99) * 1000:.0f}"),
            (
                "in gunicorn p50 / p99 ms",
                f"{percentile(served, 0.5) * 1000:.0f} / {percentile(served, 0.99) * 1000:.0f}"
                " (without waiting for a worker)",
            ),
        ]
    )
    os.unlink(access_log)


if __name__ == "__main__":
    main()
