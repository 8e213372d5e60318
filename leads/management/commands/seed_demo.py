"""Demo data (SPEC section 9): users, teams, calendar, SLA policies, an active definition and
~400 leads with 90 days of events, touches and stage history in every stage.

Deterministic (``random.Random(42)``) and idempotent: when the demo users or leads already
exist it says so and changes nothing. Each part is its own function so other parts of the
project (and ``bench/generate.py``) can reuse or adjust it.

SLA policies: the defaults every new site gets (`sla.services.DEFAULT_POLICIES`, SPEC section 4)
on a Monday–Friday 9–17 UTC calendar.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from leads.models import Event, Lead, Team, TeamMembership
from reports.models import QuarterlyTarget
from scoring.definitions import content_hash
from scoring.models import (
    BehaviorRule,
    DefinitionSignature,
    DefinitionState,
    FitRule,
    Knockout,
    QualifiedLeadDefinition,
    SignatureSide,
)
from scoring.services import rescore_leads
from sla.models import BusinessCalendar
from sla.services import install_default_policies

from ._demo_story import Story, clock_at, plan

DEMO_PASSWORD = "demo"
SEED = 42

FIRST_NAMES = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Lucas",
    "Sophia",
    "Mateo",
    "Isabella",
    "Elijah",
    "Mia",
    "James",
    "Charlotte",
    "Benjamin",
    "Amelia",
    "Henry",
    "Harper",
    "Leon",
    "Clara",
    "Jonas",
    "Ines",
    "Hugo",
    "Chloe",
    "Louis",
    "Lena",
    "Finn",
    "Sara",
    "Marco",
    "Giulia",
    "Priya",
    "Arjun",
    "Yuki",
    "Hiro",
    "Mei",
    "Wei",
    "Ana",
    "Diego",
    "Camila",
    "Tomás",
    "Freya",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Müller",
    "Schmidt",
    "Schneider",
    "Dubois",
    "Laurent",
    "Bernard",
    "Rossi",
    "Bianchi",
    "van Dijk",
    "de Vries",
    "Jansen",
    "Fernández",
    "López",
    "Silva",
    "Santos",
    "Sato",
    "Tanaka",
    "Chen",
    "Wang",
    "Patel",
    "Sharma",
    "Novak",
    "Kowalski",
]
COMPANY_WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Wonka",
    "Cyberdyne",
    "Aperture",
    "Massive",
    "Pied Piper",
    "Gringotts",
    "Monarch",
    "Oscorp",
    "Nakatomi",
    "Dunder",
    "Prestige",
    "Sterling",
    "Blue Sun",
    "Zenith",
]
COMPANY_SUFFIXES = ["Inc", "GmbH", "Ltd", "Labs", "Systems", "Group", "Analytics", "Logistics"]
JOB_TITLES = [
    ("VP of Marketing", 0.6),
    ("Director of Sales", 0.6),
    ("Head of Operations", 0.5),
    ("Chief Revenue Officer", 0.3),
    ("Marketing Manager", 1.0),
    ("Sales Operations Analyst", 1.0),
    ("Software Engineer", 1.0),
    ("Student", 0.3),
    ("Consultant", 0.8),
    ("Office Manager", 0.6),
    ("Director of IT", 0.5),
    ("CFO", 0.2),
]
INDUSTRIES = [
    "Software",
    "Manufacturing",
    "Retail",
    "Financial Services",
    "Healthcare",
    "Logistics",
    "Education",
    "Media",
    "Energy",
    "Telecommunications",
]
# Countries weighted roughly as a B2B SaaS sees them; two teams plus the fallback.
COUNTRIES = [
    ("US", 30),
    ("CA", 6),
    ("GB", 12),
    ("DE", 10),
    ("FR", 7),
    ("NL", 4),
    ("ES", 3),
    ("AU", 4),
    ("BR", 3),
    ("IN", 4),
    ("JP", 2),
    ("SG", 2),
]
SOURCES = [
    ("webinar", 18),
    ("organic_search", 25),
    ("paid_search", 15),
    ("content_download", 14),
    ("referral", 8),
    ("trade_show", 6),
    ("linkedin", 10),
    ("partner", 4),
]
TEAMS: list[dict[str, Any]] = [
    {"name": "North America", "territories": ["US", "CA"], "is_fallback": False},
    {"name": "EMEA", "territories": ["GB", "DE", "FR", "NL", "ES"], "is_fallback": False},
    {"name": "Rest of World", "territories": [], "is_fallback": True},
]
PAGES = ["/", "/pricing", "/product", "/blog/lead-scoring", "/customers", "/docs", "/pricing/enterprise"]

DEFINITION: dict[str, Any] = {
    "name": "FY27 Q1",
    "fit_threshold": 50,
    "behavior_threshold": 40,
    "required_fields": ["email", "company"],
    "hand_raisers": ["demo_request", "contact_me"],
    "recycle_cooldown_days": 30,
    "fit_rules": [
        {"name": "Mid-market or larger", "field": "employees", "operator": "gte", "value": 100, "points": 25},
        {
            "name": "Decision maker",
            "field": "job_title",
            "operator": "regex",
            "value": "(?i)\\b(vp|director|head|chief)\\b",
            "points": 30,
        },
    ],
    "behavior_rules": [
        {
            "name": "Pricing page",
            "event_type": "page_view",
            "property": "url",
            "property_operator": "contains",
            "property_value": "/pricing",
            "points": 10,
            "max_occurrences": 3,
            "half_life_days": 30,
        },
        {"name": "Webinar", "event_type": "webinar_attended", "points": 20, "max_occurrences": 2, "half_life_days": 60},
    ],
    "knockouts": [
        {"name": "Free mail", "field": "email", "operator": "regex", "value": "@(gmail|yahoo|hotmail)\\."},
    ],
}

DEMO_USERNAMES = ("marketer", "manager", "rep1", "rep2", "rep3")


def weighted(rng: random.Random, pairs: Sequence[tuple[str, float]]) -> str:
    values, weights = zip(*pairs, strict=False)
    return rng.choices(values, weights=weights)[0]


def already_seeded() -> bool:
    User = get_user_model()
    return User.objects.filter(username__in=DEMO_USERNAMES).exists() or Lead.objects.exists()


def seed_users(*, password: str = DEMO_PASSWORD) -> dict[str, Any]:
    """The demo users (marketer, manager, three reps, two account executives), by username."""
    User = get_user_model()
    spec = {
        "marketer": ("marketing", True, "Maya", "Marketer"),
        "manager": ("sales_manager", True, "Sam", "Manager"),
        "rep1": ("sales_rep", False, "Riley", "Reyes"),
        "rep2": ("sales_rep", False, "Robin", "Okafor"),
        "rep3": ("sales_rep", False, "Rafael", "Weber"),
        "ae1": ("account_executive", False, "Alex", "Ito"),
        "ae2": ("account_executive", False, "Ana", "Moreau"),
    }
    users = {}
    for username, (role, staff, first, last) in spec.items():
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "email": f"{username}@leadflow.example",
                "is_staff": staff,
                "first_name": first,
                "last_name": last,
            },
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=role))
        users[username] = user
    return users


def seed_teams(*, users: dict[str, Any]) -> dict[str, Team]:
    """Two territory teams and the fallback; rep1+rep2 in North America, rep3 in EMEA and the
    fallback, the manager managing all three."""
    teams = {}
    for spec in TEAMS:
        team, _ = Team.objects.get_or_create(
            name=spec["name"],
            defaults={
                "territories": spec["territories"],
                "is_fallback": spec["is_fallback"],
                "manager": users.get("manager"),
            },
        )
        teams[spec["name"]] = team
    members = {"North America": ["rep1", "rep2", "ae1"], "EMEA": ["rep3", "ae2"], "Rest of World": ["rep3", "ae2"]}
    for team_name, usernames in members.items():
        for username in usernames:
            if username in users:
                TeamMembership.objects.get_or_create(team=teams[team_name], user=users[username])
    return teams


def seed_sla() -> None:
    """A Monday–Friday 9–17 UTC calendar and the default SLA policies every new site gets
    (`sla.services.DEFAULT_POLICIES`, SPEC section 4)."""
    calendar, _ = BusinessCalendar.objects.get_or_create(
        name="Standard business week",
        defaults={
            "timezone": "UTC",
            "working_days": [0, 1, 2, 3, 4],
            "work_start": dt.time(9, 0),
            "work_end": dt.time(17, 0),
            "holidays": ["2026-12-25", "2026-12-26", "2027-01-01"],
        },
    )
    install_default_policies(calendar=calendar)


def seed_definition(*, users: dict[str, Any], data: dict[str, Any] = DEFINITION):
    """The active qualified-lead definition of SPEC section 9, signed by marketing and sales."""
    existing = QualifiedLeadDefinition.objects.filter(state=DefinitionState.ACTIVE).first()
    if existing is not None:
        return existing
    now = timezone.now()
    signed_at = now - dt.timedelta(days=120)
    definition = QualifiedLeadDefinition.objects.create(
        name=data["name"],
        state=DefinitionState.ACTIVE,
        fit_threshold=data["fit_threshold"],
        behavior_threshold=data["behavior_threshold"],
        required_fields=data["required_fields"],
        hand_raisers=data["hand_raisers"],
        recycle_cooldown_days=data["recycle_cooldown_days"],
        review_by=(now + dt.timedelta(days=90)).date(),
        notes="Agreed in the quarterly marketing–sales SLA review.",
        marketing_signed_by=users.get("marketer"),
        marketing_signed_at=signed_at,
        sales_signed_by=users.get("manager"),
        sales_signed_at=signed_at,
        created_by=users.get("marketer"),
        created_at=signed_at,
        activated_at=signed_at,
    )
    for position, rule in enumerate(data["fit_rules"]):
        FitRule.objects.create(definition=definition, position=position, **rule)
    for position, rule in enumerate(data["behavior_rules"]):
        BehaviorRule.objects.create(definition=definition, position=position, **rule)
    for position, rule in enumerate(data["knockouts"]):
        Knockout.objects.create(definition=definition, position=position, **rule)
    # The signatures' history, each bound to the content signed (rules and SLA terms).
    signed = content_hash(definition)
    for side, username in ((SignatureSide.MARKETING, "marketer"), (SignatureSide.SALES, "manager")):
        DefinitionSignature.objects.create(
            definition=definition, side=side, signer=users.get(username), content_hash=signed, signed_at=signed_at
        )
    return definition


# Marketing's commitment for the current and the previous quarter (overall), so the commitment
# report and the agreement page have a target to show.
DEMO_TARGETS = (60, 55)


def seed_targets(*, today: dt.date | None = None) -> None:
    today = today or timezone.localdate()
    year, quarter = today.year, (today.month - 1) // 3 + 1
    for qualified_leads in DEMO_TARGETS:
        QuarterlyTarget.objects.get_or_create(
            year=year, quarter=quarter, team=None, defaults={"qualified_leads": qualified_leads}
        )
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)


# --- Leads --------------------------------------------------------------------------------

# Where a demo lead's story ends, with weights: every stage is represented, most leads stay leads.
ENDINGS = [
    ("lead", 40),
    ("mql_open", 6),
    ("mql_breached", 1.5),
    ("sal_open", 6),
    ("sql_open", 5),
    ("won", 4),
    ("lost", 4),
    ("recycled", 7),
    ("disqualified", 4),
    ("recycled_again_mql", 1),
]


def _fake_lead(rng: random.Random, n: int, now: dt.datetime) -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    company = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)}"
    domain = company.lower().replace(" ", "") + ".example"
    if rng.random() < 0.05:
        domain = rng.choice(["gmail.com", "yahoo.com", "hotmail.com"])
    local = f"{first}.{last}".lower().replace(" ", "").replace("ü", "u").replace("á", "a")
    local = local.replace("é", "e").replace("ó", "o").replace("í", "i")
    return {
        "email": f"{local}.{n}@{domain}",
        "first_name": first,
        "last_name": last,
        "company": company,
        "job_title": weighted(rng, JOB_TITLES),
        "industry": rng.choice(INDUSTRIES),
        "country": weighted(rng, COUNTRIES),
        "employees": rng.choice([8, 25, 60, 150, 400, 1200, 5000, 20000]),
        "annual_revenue": rng.choice([500_000, 2_000_000, 15_000_000, 80_000_000, 400_000_000]),
        "source": weighted(rng, SOURCES),
        "created_at": now - dt.timedelta(days=rng.uniform(3, 90)),
    }


def _events_for(rng: random.Random, lead: Lead, now: dt.datetime, *, engaged: bool) -> list[Event]:
    count = rng.randint(4, 14) if engaged else rng.randint(0, 5)
    span = max((now - lead.created_at).total_seconds(), 3600)
    events = []
    for k in range(count):
        at = lead.created_at + dt.timedelta(seconds=rng.uniform(0, span))
        kind = rng.choices(
            ["page_view", "email_open", "webinar_attended", "content_download", "demo_request"],
            weights=[50, 25, 10, 12, 3 if engaged else 0.5],
        )[0]
        properties = {"url": rng.choice(PAGES)} if kind == "page_view" else {}
        events.append(
            Event(
                lead=lead,
                type=kind,
                occurred_at=at,
                received_at=at,
                properties=properties,
                event_id=f"demo-{lead.pk}-{k}",
            )
        )
    return events


DECISION_MAKER_TITLES = [
    title for title, _weight in JOB_TITLES if any(w in title for w in ("VP", "Director", "Head", "Chief"))
]


def seed_leads(
    *,
    users: dict[str, Any],
    count: int = 400,
    rng: random.Random | None = None,
    now: dt.datetime | None = None,
    progress=print,
) -> dict[str, int]:
    """`count` leads with events, touches and stage history, lived through the lifecycle in time
    order (`_demo_story`). Returns how many end in each stage."""
    rng = rng or random.Random(SEED)
    now = now or timezone.now()
    story = Story(rng, now)
    ids = []
    for n in range(count):
        ending = weighted(rng, ENDINGS)
        data = _fake_lead(rng, n, now)
        if ending != "lead":
            # A lead whose story goes past MQL fits the definition: the engine will say so.
            data["employees"] = rng.choice([150, 400, 1200, 5000, 20000])
            data["job_title"] = rng.choice(DECISION_MAKER_TITLES)
        with clock_at(data["created_at"]):
            lead = Lead.objects.create(**data, stage_entered_at=data["created_at"])
            # Scored on arrival by the scoring service (fit from the profile; no events yet).
            rescore_leads([lead.pk], now=data["created_at"])
        Event.objects.bulk_create(_events_for(rng, lead, now, engaged=ending != "lead"))
        plan(story, lead, ending)
        ids.append(lead.pk)
        if (n + 1) % 100 == 0 or n + 1 == count:
            progress(f"  leads created: {n + 1}/{count}")
    refused = story.play()
    progress(f"  history played through the lifecycle ({refused} steps refused, as a user's would be)")
    # Today's scores, by the engine; whatever now meets the definition is promoted by it.
    rescore_leads(ids, now=now)
    ended: dict[str, int] = {}
    for stage in Lead.objects.filter(pk__in=ids).values_list("stage", flat=True):
        ended[stage] = ended.get(stage, 0) + 1
    return ended


class Command(BaseCommand):
    help = "Create demo users, teams, SLA policies, a definition and ~400 leads (once)."

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=400, help="How many demo leads (default 400).")

    def handle(self, *args, leads: int, **options):
        if already_seeded():
            self.stdout.write("demo data already present; nothing to do.")
            return
        self.stdout.write(f"Seeding demo data. Logins: {', '.join(DEMO_USERNAMES)} (password '{DEMO_PASSWORD}').")
        with transaction.atomic():
            users = seed_users()
            self.stdout.write("  users and roles: done")
            seed_teams(users=users)
            self.stdout.write("  teams: done")
            seed_sla()
            self.stdout.write("  business calendar and SLA policies: done")
            seed_definition(users=users)
            self.stdout.write("  active qualified-lead definition: done")
            seed_targets()
            self.stdout.write("  quarterly targets (current and previous quarter): done")
            # One transaction: a failed seed leaves nothing behind, so a re-run starts clean.
            ended = seed_leads(users=users, count=leads, progress=self.stdout.write)
        summary = ", ".join(f"{stage} {n}" for stage, n in sorted(ended.items()))
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {summary}."))
