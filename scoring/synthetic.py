"""A synthetic lead history with a known true model, for tests and `bench/suggest.py`.

Real histories are private, so the suggestion (scoring.suggest) is measured on generated leads
whose outcome is drawn from a logistic model we wrote down: the best any scorer can do on them is
that model's own ranking (`true_logit`), which gives the tests and the bench a ceiling to compare
against. Pure Python (no numpy, no Django): it runs wherever the tests run.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

# Effects on the log-odds of winning. Values chosen so that the true model ranks leads with an
# AUC of about 0.86, the order of a real B2B history.
SOURCES = {"web": 0.0, "referral": 1.1, "paid_search": -0.3, "event": 0.5, "partner": 0.7, "content": -0.6}
SOURCE_WEIGHTS = (0.34, 0.08, 0.22, 0.1, 0.08, 0.18)
COUNTRIES = {"US": 0.5, "GB": 0.4, "DE": 0.3, "FR": 0.0, "ES": -0.2, "RO": -0.1, "IN": -0.7, "BR": -0.5}
COUNTRY_WEIGHTS = (0.3, 0.12, 0.1, 0.08, 0.06, 0.04, 0.14, 0.08)
# Countries seen too rarely to be learnt one by one: the suggestion pools them into "other".
RARE_COUNTRIES = ("NZ", "PT", "CZ", "GR", "IE", "AT", "HU", "DK", "FI", "NO", "SE", "PL")
INDUSTRIES = {"software": 0.6, "finance": 0.4, "healthcare": 0.1, "retail": -0.3, "education": -0.6, "": -0.2}
INDUSTRY_WEIGHTS = (0.28, 0.16, 0.14, 0.16, 0.12, 0.14)
SENIORITY = {"VP": 1.0, "Head of": 0.8, "Director": 0.7, "Chief": 0.9, "Manager": 0.1, "": 0.0, "Intern": -1.4}
SENIORITY_WEIGHTS = (0.08, 0.08, 0.1, 0.04, 0.3, 0.3, 0.1)
FUNCTIONS = ("Marketing", "Sales", "IT", "Operations", "Finance")
ORIGINS = {"organic": 0.3, "ads": -0.2, "social": -0.4, "email": 0.1}
ORIGIN_WEIGHTS = (0.35, 0.3, 0.2, 0.15)
CITIES = ("London", "Berlin", "Paris", "New York", "Austin", "Madrid", "Bucharest", "Mumbai", "Sao Paulo")
LAST_ACTIVITIES = {"pricing_page": 0.9, "webinar": 0.5, "download": 0.2, "blog": -0.2, "": -0.3}
LAST_ACTIVITY_WEIGHTS = (0.12, 0.12, 0.2, 0.3, 0.26)
INTERCEPT = -5.0
# How strongly the facts decide the outcome: all effects above are multiplied by it.
STRENGTH = 1.5


@dataclass(frozen=True)
class SyntheticLead:
    """One generated lead: its facts (as `engine.fact` reads them), outcome and true log-odds."""

    facts: dict[str, Any]
    won: bool
    true_logit: float


def _pick(rng: random.Random, table: dict[str, float], weights: tuple[float, ...]) -> str:
    return rng.choices(list(table), weights=weights)[0]


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: means here are small (under 20).
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def generate(n: int, *, seed: int = 0) -> list[SyntheticLead]:
    """`n` leads with categorical fields (source, country, industry, job title, and the attribute
    keys origin, city, last_activity) and numeric attributes (visits, minutes_on_site,
    pages_per_visit) plus employees; `won` is drawn from the logistic true model."""
    rng = random.Random(seed)
    leads: list[SyntheticLead] = []
    for _ in range(n):
        logit = 0.0
        source = _pick(rng, SOURCES, SOURCE_WEIGHTS)
        logit += SOURCES[source]
        if rng.random() < 0.06:
            country = rng.choice(RARE_COUNTRIES)
        else:
            country = _pick(rng, COUNTRIES, COUNTRY_WEIGHTS)
            logit += COUNTRIES[country]
        industry = _pick(rng, INDUSTRIES, INDUSTRY_WEIGHTS)
        logit += INDUSTRIES[industry]
        seniority = _pick(rng, SENIORITY, SENIORITY_WEIGHTS)
        logit += SENIORITY[seniority]
        function = rng.choice(FUNCTIONS)
        job_title = f"{seniority} {function}".strip() if seniority not in ("Head of", "Director") else ""
        if seniority == "Head of":
            job_title = f"Head of {function}"
        elif seniority == "Director":
            job_title = f"Director of {function}"
        origin = _pick(rng, ORIGINS, ORIGIN_WEIGHTS)
        logit += ORIGINS[origin]
        last_activity = _pick(rng, LAST_ACTIVITIES, LAST_ACTIVITY_WEIGHTS)
        logit += LAST_ACTIVITIES[last_activity]
        # Engagement: a latent interest drives all three numbers (so they are correlated, as in
        # real data) and the win odds rise with it, saturating (log) rather than linearly.
        interest = rng.gammavariate(2.0, 1.0)
        visits = _poisson(rng, 1.0 + 2.0 * interest)
        minutes = round(rng.gammavariate(1.5, 2.0 + 2.0 * interest), 1) if visits else 0.0
        pages = round(1.0 + rng.gammavariate(2.0, 0.6 + 0.2 * interest), 1) if visits else 0.0
        logit += 0.7 * math.log1p(visits) + 0.25 * math.log1p(minutes) - 0.15 * abs(pages - 4.0)
        employees = int(math.exp(rng.gauss(4.5, 1.6))) + 1
        logit += 0.5 if 200 <= employees < 5000 else (-0.4 if employees < 20 else 0.0)
        attributes: dict[str, Any] = {"origin": origin, "city": rng.choice(CITIES), "visits": visits}
        if last_activity:
            attributes["last_activity"] = last_activity
        if visits:
            attributes["minutes_on_site"] = minutes
            attributes["pages_per_visit"] = pages
        facts = {
            "source": source,
            "country": country,
            "industry": industry,
            "job_title": job_title,
            "employees": employees,
            "attributes": attributes,
        }
        logit = INTERCEPT + STRENGTH * logit
        won = rng.random() < 1.0 / (1.0 + math.exp(-logit))
        leads.append(SyntheticLead(facts=facts, won=won, true_logit=logit))
    return leads
