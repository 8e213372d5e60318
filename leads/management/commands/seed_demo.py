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

from leads import lifecycle
from leads.assignment import team_for_country
from leads.lifecycle import Actor, HistoricalStep
from leads.models import Event, Lead, Stage, Team, TeamMembership, Touch, TouchKind, TouchOutcome
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
from sla.models import BusinessCalendar
from sla.services import install_default_policies

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
    """The five demo users with their roles. Returns them by username."""
    User = get_user_model()
    spec = {
        "marketer": ("marketing", True, "Maya", "Marketer"),
        "manager": ("sales_manager", True, "Sam", "Manager"),
        "rep1": ("sales_rep", False, "Riley", "Reyes"),
        "rep2": ("sales_rep", False, "Robin", "Okafor"),
        "rep3": ("sales_rep", False, "Rafael", "Weber"),
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
    members = {"North America": ["rep1", "rep2"], "EMEA": ["rep3"], "Rest of World": ["rep3"]}
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


def _history(
    rng: random.Random, ending: str, created: dt.datetime, now: dt.datetime, owner_id: int | None
) -> list[HistoricalStep]:
    """The past stage steps leading to `ending`, spaced realistically and never in the future."""
    if ending == "lead":
        return []
    steps: list[HistoricalStep] = []
    budget = (now - created).total_seconds()

    def later(at: dt.datetime, low_h: float, high_h: float) -> dt.datetime:
        moved = at + dt.timedelta(hours=rng.uniform(low_h, high_h))
        return min(moved, now - dt.timedelta(minutes=5))

    if ending == "mql_open":
        # Entered recently, so its decision deadline is still ahead.
        mql_at = now - dt.timedelta(hours=rng.uniform(1, 20))
        return [HistoricalStep(Stage.MQL, max(mql_at, created), "score", owner_id=owner_id)]
    if ending == "mql_breached":
        mql_at = now - dt.timedelta(days=rng.uniform(3.5, 6))
        return [HistoricalStep(Stage.MQL, max(mql_at, created), "score", owner_id=owner_id)]
    mql_at = created + dt.timedelta(seconds=rng.uniform(0.05, 0.5) * budget)
    if ending == "sal_open":
        # Accepted within the last fortnight, so most qualify-or-drop deadlines are still ahead.
        mql_at = max(created, now - dt.timedelta(days=rng.uniform(2, 12)))
    reason = "hand_raiser" if rng.random() < 0.2 else "score"
    steps.append(HistoricalStep(Stage.MQL, mql_at, reason, owner_id=owner_id))
    if ending in ("recycled", "disqualified") and rng.random() < 0.5:
        reject = (
            rng.choice(["no_budget", "bad_timing", "no_need", "other"])
            if ending == "recycled"
            else rng.choice(["not_a_fit", "inaccurate_data", "competitor"])
        )
        steps.append(HistoricalStep(ending, later(mql_at, 2, 30), reject))
        return steps
    if ending == "recycled_again_mql":
        recycled_at = later(mql_at, 4, 30)
        steps.append(HistoricalStep(Stage.RECYCLED, recycled_at, "bad_timing"))
        steps.append(
            HistoricalStep(Stage.MQL, now - dt.timedelta(hours=rng.uniform(1, 8)), "hand_raiser", owner_id=owner_id)
        )
        return steps
    sal_at = later(mql_at, 0.5, 30)
    steps.append(HistoricalStep(Stage.SAL, sal_at, "", owner_id=owner_id))
    if ending == "sal_open":
        return steps
    if ending in ("recycled", "disqualified"):
        reason = "no_budget" if ending == "recycled" else "not_a_fit"
        steps.append(HistoricalStep(ending, later(sal_at, 24, 200), reason))
        return steps
    sql_at = later(sal_at, 24, 300)
    steps.append(HistoricalStep(Stage.SQL, sql_at, ""))
    if ending in ("won", "lost"):
        steps.append(HistoricalStep(ending, later(sql_at, 48, 500), ending))
    return steps


def seed_leads(
    *,
    users: dict[str, Any],
    count: int = 400,
    rng: random.Random | None = None,
    now: dt.datetime | None = None,
    progress=print,
) -> dict[str, int]:
    """`count` leads with events, touches and stage history. Returns how many end in each stage."""
    rng = rng or random.Random(SEED)
    now = now or timezone.now()

    reps_by_team: dict[int, list[Any]] = {}
    for membership in TeamMembership.objects.select_related("user").order_by("id"):
        reps_by_team.setdefault(membership.team_id, []).append(membership.user)
    system = Actor.system()
    ended: dict[str, int] = {}
    for n in range(count):
        ending = weighted(rng, ENDINGS)
        data = _fake_lead(rng, n, now)
        team = team_for_country(data["country"])
        reps = reps_by_team.get(team.pk, []) if team else []
        owner = rng.choice(reps) if reps else None
        with transaction.atomic():
            lead = Lead.objects.create(
                **data,
                team=team if ending != "lead" else None,
                stage_entered_at=data["created_at"],
                fit_score=round(rng.uniform(55, 95) if ending != "lead" else rng.uniform(0, 70), 1),
                behavior_score=round(rng.uniform(40, 90) if ending != "lead" else rng.uniform(0, 45), 1),
                scored_at=now,
            )
            Event.objects.bulk_create(_events_for(rng, lead, now, engaged=ending != "lead"))
            steps = _history(rng, ending, lead.created_at, now, owner.pk if owner else None)
            if steps:
                lifecycle.record_history(lead, steps=steps, actor=system, source="demo")
                _seed_touches(rng, lead, steps, owner, now)
        lead.refresh_from_db(fields=["stage"])
        ended[lead.stage] = ended.get(lead.stage, 0) + 1
        if (n + 1) % 50 == 0 or n + 1 == count:
            progress(f"  leads: {n + 1}/{count}")
    return ended


def _seed_touches(rng: random.Random, lead: Lead, steps: list[HistoricalStep], owner, now: dt.datetime) -> None:
    """Calls and emails for leads that reached SAL; an open SAL gets its first touch recorded."""
    sal = next((s for s in steps if s.to_stage == Stage.SAL), None)
    if sal is None or owner is None:
        return
    touches = []
    at = sal.at
    for _ in range(rng.randint(1, 6)):
        at = min(at + dt.timedelta(hours=rng.uniform(0.3, 40)), now)
        kind = rng.choice([TouchKind.CALL, TouchKind.CALL, TouchKind.EMAIL, TouchKind.MEETING])
        outcome = {
            TouchKind.CALL: rng.choice([TouchOutcome.CONNECTED, TouchOutcome.NO_ANSWER, TouchOutcome.VOICEMAIL]),
            TouchKind.EMAIL: rng.choice([TouchOutcome.REPLIED, TouchOutcome.BOUNCED]),
            TouchKind.MEETING: TouchOutcome.CONNECTED,
        }[kind]
        touches.append(Touch(lead=lead, user=owner, kind=kind, outcome=outcome, at=at))
    lead.refresh_from_db(fields=["stage", "stage_entered_at", "first_touch_at"])
    if lead.stage == Stage.SAL:
        # Logged through the lifecycle so the first touch stops the first-touch clock.
        first = touches.pop(0)
        lifecycle.log_touch(lead, actor=Actor.person(owner), kind=first.kind, outcome=first.outcome, at=first.at)
    Touch.objects.bulk_create(touches)


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
