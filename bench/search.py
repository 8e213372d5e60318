"""Time lead search (issue 25) on a big database: the "all leads" list and the inbox, searched.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/leadflow_bench \\
        .venv/bin/python bench/search.py [--rounds 30] [--terms 10]

Search terms are taken from the data (a surname, a company word, part of an e-mail address, an
external id, a rare and a common two-word query, a word nothing matches), so each round is a real
look-up, not a cache hit on one value. Each request goes through Django's test client (middleware,
filters, the count for the pager, the first page, template rendering); the database is only read.
Prints median and 95th percentile per kind of query, and the median over all searched requests.
Target (issue 25): median <= 100 ms at 1M leads (PostgreSQL, pg_trgm GIN indexes of migration
leads 0014).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

from pages import p95, setup_django  # noqa: E402 - bench/ scripts share the read-only set-up


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed requests per kind of query")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--explain", action="store_true", help="print the plan of one search")
    return parser.parse_args()


def sample_terms(rng: random.Random, rounds: int) -> dict[str, list[dict[str, str]]]:
    """Query strings per kind, drawn from random leads (found through the primary key)."""
    from django.db.models import Max

    from leads.models import Lead

    top = Lead.objects.aggregate(top=Max("id"))["top"] or 0
    leads: list[Lead] = []
    while len(leads) < rounds:
        ids = [rng.randint(1, top) for _ in range(rounds * 2)]
        leads.extend(Lead.objects.filter(pk__in=ids).only("last_name", "company", "email", "external_id"))
    leads = leads[:rounds]
    with_external = list(Lead.objects.filter(external_id__isnull=False).values_list("external_id", flat=True)[:rounds])
    return {
        "surname": [{"q": lead.last_name} for lead in leads if lead.last_name],
        "company word": [{"q": (lead.company.split() or ["acme"])[0]} for lead in leads],
        "e-mail part": [{"q": lead.email.split("@")[0][-6:]} for lead in leads],
        "external id": [{"q": value} for value in with_external] or [{"q": "crm-1"}],
        "surname + company": [{"q": f"{lead.last_name} {(lead.company.split() or [''])[0]}"} for lead in leads],
        "surname, stage=mql": [{"q": lead.last_name, "stage": "mql"} for lead in leads if lead.last_name],
        "no match": [{"q": f"zzqx{n}"} for n in range(rounds)],
    }


def main() -> None:
    args = parse_args()
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from leads.filters import search_q
    from leads.models import Lead
    from leads.permissions import SALES_MANAGER

    rng = random.Random(args.seed)
    manager = get_user_model().objects.filter(groups__name=SALES_MANAGER).order_by("id").first()
    if manager is None:
        raise SystemExit("no sales manager in this database (run bench/generate.py)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'leads_lead'")
        estimate = cursor.fetchone()[0] if connection.vendor == "postgresql" else Lead.objects.count()
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}; leads: ~{estimate:,}")
    from axes.signals import handle_user_logged_in
    from django.contrib.auth.signals import user_logged_in

    user_logged_in.disconnect(handle_user_logged_in)  # axes logs each login: a write
    client = Client()
    client.force_login(manager)
    kinds = sample_terms(rng, args.rounds)
    if args.explain:
        term = kinds["surname"][0]["q"]
        print(Lead.objects.filter(search_q(term)).order_by("-created_at", "-id")[:50].explain(analyze=True))
    for params in [p for terms in kinds.values() for p in terms[:3]]:  # warm-up, untimed
        client.get("/leads/?" + urlencode(params))
    # Matches: the pager's count, which a search caps at 1,000 ("1,001" = more than 1,000).
    header = f"{'query (manager, /leads/)':<26} {'rounds':>6} {'median ms':>10} {'p95 ms':>8} {'matches':>9}"
    print()
    print(header)
    print("-" * len(header))
    everything: list[float] = []
    for kind, terms in kinds.items():
        samples, matches = [], []
        for params in terms:
            url = "/leads/?" + urlencode(params)
            start = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}")
            found = re.search(rb'id="result-count">(More than )?([\d,]+)', response.content)
            matches.append(int(found.group(2).replace(b",", b"")) + bool(found.group(1)) if found else 0)
        everything.extend(samples)
        print(
            f"{kind:<26} {len(samples):>6} {statistics.median(samples):>10.1f} {p95(samples):>8.1f} "
            f"{int(statistics.median(matches)):>9,}",
            flush=True,
        )
    print("-" * len(header))
    print(f"{'all searches':<26} {len(everything):>6} {statistics.median(everything):>10.1f} {p95(everything):>8.1f}")
    print()
    # The inbox searched: the manager's (every open MQL and SAL) and the busiest rep's.
    from django.db.models import Count

    from leads import selectors
    from leads.permissions import SALES_REP

    busiest = (
        Lead.objects.filter(stage__in=selectors.INBOX_STAGES, owner__groups__name=SALES_REP)
        .values("owner")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    rep_client = Client()
    if busiest is not None:
        rep_client.force_login(get_user_model().objects.get(pk=busiest["owner"]))
    header = f"{'query (/inbox/)':<26} {'rounds':>6} {'median ms':>10} {'p95 ms':>8}"
    print(header)
    print("-" * len(header))
    for who, inbox_client in (("manager", client), ("busiest rep", rep_client)):
        for kind in ("surname", "company word", "no match"):
            samples = []
            for params in kinds[kind]:
                start = time.perf_counter()
                response = inbox_client.get("/inbox/?" + urlencode(params))
                samples.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"/inbox/ answered {response.status_code}")
            label = f"{who}: {kind}"
            print(f"{label:<26} {len(samples):>6} {statistics.median(samples):>10.1f} {p95(samples):>8.1f}", flush=True)


if __name__ == "__main__":
    main()
