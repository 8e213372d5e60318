"""Candidate duplicate leads, with why they match (issue 21).

Three signals, each a reason shown to marketing:

- the same e-mail address once normalised (case, surrounding blanks, a `+tag`, and dots in a
  Gmail local part);
- the same phone number (only once leads have a `phone` field: `phone_key` is a no-op until
  then);
- a similar name at a similar company: RapidFuzz's token-sort ratio, compared only within
  blocks of leads whose normalised company starts alike, so the work grows with block sizes,
  not with the square of the table.

Merged and erased leads are never candidates.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from rapidfuzz import fuzz

from leads.models import Lead

NAME_THRESHOLD = 90
COMPANY_THRESHOLD = 85
MAX_BLOCK = 2000
COMPANY_SUFFIXES = re.compile(r"\b(inc|llc|ltd|limited|gmbh|ag|sa|sas|srl|bv|plc|corp|corporation|co|company)\b\.?")
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def normalise_email(email: str | None) -> str:
    if not email:
        return ""
    email = email.strip().lower()
    local, _sep, domain = email.partition("@")
    if not domain:
        return email
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def normalise_company(company: str) -> str:
    text = COMPANY_SUFFIXES.sub(" ", company.lower())
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def phone_key(lead: Any) -> str:
    """The lead's phone as digits, or "" — also when leads have no `phone` field at all yet, so
    phone matching lights up by itself once the identity work adds one."""
    value = getattr(lead, "phone", None)
    if not value:
        return ""
    digits = re.sub(r"\D", "", str(value))
    return digits if len(digits) >= 7 else ""


@dataclass
class Candidate:
    """Two leads that may be one person: `first` is the older (lower id)."""

    first: Lead
    second: Lead
    reasons: list[str] = field(default_factory=list)
    score: float = 0.0

    @property
    def key(self) -> tuple[int, int]:
        return (self.first.pk, self.second.pk)


def _pairs_by_key(leads: Iterable[Lead], key: Any) -> list[tuple[Lead, Lead]]:
    groups: dict[str, list[Lead]] = defaultdict(list)
    for lead in leads:
        value = key(lead)
        if value:
            groups[value].append(lead)
    pairs: list[tuple[Lead, Lead]] = []
    for group in groups.values():
        group.sort(key=lambda lead: lead.pk)
        pairs.extend((group[0], other) for other in group[1:])
    return pairs


def find_duplicates(*, limit: int = 200, queryset: Any = None) -> list[Candidate]:
    """Candidate pairs, strongest first (same e-mail, then same phone, then by similarity)."""
    qs = queryset if queryset is not None else Lead.objects.all()
    leads = list(qs.filter(merged_into__isnull=True, erased_at__isnull=True).order_by("pk"))
    found: dict[tuple[int, int], Candidate] = {}

    def add(a: Lead, b: Lead, reason: str, score: float) -> None:
        first, second = (a, b) if a.pk < b.pk else (b, a)
        candidate = found.setdefault((first.pk, second.pk), Candidate(first, second))
        candidate.reasons.append(reason)
        candidate.score = max(candidate.score, score)

    for a, b in _pairs_by_key(leads, lambda lead: normalise_email(lead.email)):
        add(a, b, _("same e-mail address (%(email)s)") % {"email": normalise_email(a.email)}, 100.0)
    for a, b in _pairs_by_key(leads, phone_key):
        add(a, b, _("same phone number"), 99.0)

    blocks: dict[str, list[tuple[Lead, str, str]]] = defaultdict(list)
    for lead in leads:
        name = f"{lead.first_name} {lead.last_name}".strip().lower()
        company = normalise_company(lead.company or "")
        if name and company:
            blocks[company[:4]].append((lead, name, company))
    for block in blocks.values():
        block = block[:MAX_BLOCK]
        for i, (a, name_a, company_a) in enumerate(block):
            for b, name_b, company_b in block[i + 1 :]:
                company_score = fuzz.token_sort_ratio(company_a, company_b)
                if company_score < COMPANY_THRESHOLD:
                    continue
                name_score = fuzz.token_sort_ratio(name_a, name_b)
                if name_score >= NAME_THRESHOLD:
                    add(
                        a,
                        b,
                        _("similar name and company (name %(name)d%%, company %(company)d%%)")
                        % {"name": round(name_score), "company": round(company_score)},
                        (name_score + company_score) / 2 - 5,
                    )
    ranked = sorted(found.values(), key=lambda c: (-c.score, c.key))
    return ranked[:limit]


def suggested_survivor(candidate: Candidate) -> tuple[Lead, Lead]:
    """(survivor, duplicate): the lead further along the funnel stays, else the older one, so a
    merge normally keeps the survivor's stage and nobody's pipeline loses a lead."""
    order = ["lead", "recycled", "disqualified", "mql", "sal", "sql", "lost", "won"]
    a, b = candidate.first, candidate.second
    if order.index(b.stage) > order.index(a.stage):
        return b, a
    return a, b
