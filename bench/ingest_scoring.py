"""Benchmark event scoring: events/s through `scoring.services.on_events_recorded` for batches
of 1,000 events, on a copy of the generated database (it inserts events and promotes leads).

    .venv/bin/python bench/ingest_scoring.py --database leadflow_bench_scoring   # an existing copy
    .venv/bin/python bench/ingest_scoring.py --batches 20

Each batch: 1,000 new events spread over random existing open leads (each lead already has
~10 events, all re-read, as in production), bulk-inserted, then scored in the same transaction.
Prints per-phase medians and events/s for the scoring path alone and for insert + scoring, and
the same through `leads.api.ingest_events` (validation, lead lookup, insert, scoring).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TYPES = [("page_view", 0.6), ("webinar_attended", 0.1), ("email_open", 0.2), ("content_download", 0.1)]
PAGES = ["/pricing", "/product", "/blog/x", "/pricing/enterprise", "/docs"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="leadflow_bench_scoring")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--leads-per-batch", type=int, default=500)
    parser.add_argument("--host", default=os.environ.get("PGHOST", "127.0.0.1"))
    parser.add_argument("--user", default=os.environ.get("PGUSER", "postgres"))
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.environ["DATABASE_URL"] = f"postgres://{args.user}@{args.host}/{args.database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
    import django

    django.setup()
    from django.db import transaction
    from django.utils import timezone

    from leads.models import Event, Lead
    from leads.services.ingest import ingest_events
    from scoring import services

    # Promotions go one by one through leads.lifecycle.promote_to_mql (lock, assignment, SLA
    # clock, audit row, webhook outbox): timed apart from the set-based scoring.
    promote_log: list[tuple[int, float]] = []
    original_promote = services._promote

    def timed_promote(candidates, *, version):
        started = time.perf_counter()
        promoted = original_promote(candidates, version=version)
        promote_log.append((promoted, time.perf_counter() - started))
        return promoted

    services._promote = timed_promote
    rng = random.Random(args.seed)
    max_id = Lead.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    if max_id == 0:
        raise SystemExit(f"{args.database} has no leads; run bench/generate.py first")
    kinds, weights = zip(*TYPES, strict=False)

    def batch() -> list[tuple[int, str, dict]]:
        lead_ids = [rng.randint(1, max_id) for _ in range(args.leads_per_batch)]
        items = []
        for _ in range(args.batch_size):
            kind = rng.choices(kinds, weights)[0]
            props = {"url": rng.choice(PAGES)} if kind == "page_view" else {}
            items.append((rng.choice(lead_ids), kind, props))
        return items

    insert_s, score_s, api_s, promote_s, promotions = [], [], [], [], []
    for _ in range(args.batches):
        items = batch()
        ids = set(Lead.objects.filter(pk__in={i for i, _, _ in items}).values_list("pk", flat=True))
        now = timezone.now()
        events = [
            Event(
                lead_id=lead_id,
                type=kind,
                properties=props,
                occurred_at=now,
                received_at=now,
                event_id=f"bench-{uuid.uuid4().hex}",
            )
            for lead_id, kind, props in items
            if lead_id in ids
        ]
        promote_log.clear()
        with transaction.atomic():
            started = time.perf_counter()
            Event.objects.bulk_create(events, batch_size=1000)
            inserted = time.perf_counter()
            services.on_events_recorded(sorted({e.lead_id for e in events}), now=now)
            scored = time.perf_counter()
        insert_s.append((inserted - started) / len(events) * args.batch_size)
        score_s.append((scored - inserted) / len(events) * args.batch_size)
        promotions.append(sum(n for n, _ in promote_log))
        promote_s.append(sum(t for _, t in promote_log) / len(events) * args.batch_size)

        payload = [
            {"lead": {"id": lead_id}, "type": kind, "properties": props, "event_id": f"bench-{uuid.uuid4().hex}"}
            for lead_id, kind, props in batch()
        ]
        valid = set(Lead.objects.filter(pk__in={p["lead"]["id"] for p in payload}).values_list("pk", flat=True))
        payload = [p for p in payload if p["lead"]["id"] in valid]
        started = time.perf_counter()
        ingest_events(payload)
        api_s.append((time.perf_counter() - started) / len(payload) * args.batch_size)

    def row(name: str, seconds: list[float]) -> str:
        median = statistics.median(seconds)
        p95 = sorted(seconds)[max(0, int(len(seconds) * 0.95) - 1)]
        return f"{name:<34} {median * 1000:>9.1f} {p95 * 1000:>9.1f} {args.batch_size / median:>12,.0f}"

    print(
        f"\nbatches of {args.batch_size} events over {args.leads_per_batch} leads, "
        f"{args.batches} batches, {args.database}"
    )
    print(f"{'path':<34} {'median ms':>9} {'p95 ms':>9} {'events/s':>12}")
    print(row("scoring (on_events_recorded)", score_s))
    print(row("  of which promotions", promote_s))
    print(row("  scoring without promotions", [a - b for a, b in zip(score_s, promote_s, strict=False)]))
    print(row("insert + scoring", [a + b for a, b in zip(insert_s, score_s, strict=False)]))
    print(row("leads.api.ingest_events (all)", api_s))
    print(f"leads promoted per batch: median {statistics.median(promotions):.0f}")


if __name__ == "__main__":
    main()
