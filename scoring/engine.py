"""Scoring engine: pure functions of facts and rules. No database access.

A definition is compiled once (regexes compiled, values normalised) into a `CompiledDefinition`;
scoring a lead is then a loop over plain tuples, which is what keeps the event path and the
set-based rescore fast.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# Fit grade cut-offs on the 0–100 fit score.
GRADE_CUTOFFS: tuple[tuple[float, str], ...] = ((75, "A"), (50, "B"), (25, "C"))

OPERATORS = ("equals", "in", "contains", "regex", "gte", "lte", "between", "is_empty")
NUMERIC_OPERATORS = ("gte", "lte", "between")
SECONDS_PER_DAY = 86400.0


def fit_grade(fit_score: float) -> str:
    for cutoff, grade in GRADE_CUTOFFS:
        if fit_score >= cutoff:
            return grade
    return "D"


def clamp(score: float) -> float:
    return max(0.0, min(100.0, score))


def decay_factor(age_days: float, half_life_days: float | None) -> float:
    """Points lose half their value every `half_life_days`; no half-life means no decay.
    Events from the future (clock skew) count at full value rather than more than full."""
    if not half_life_days or age_days <= 0:
        return 1.0
    return math.pow(0.5, age_days / half_life_days)


# --- Conditions --------------------------------------------------------------------------


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _is_empty(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, (str, list, dict)) and len(value) == 0)
        or (isinstance(value, str) and not value.strip())
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value).casefold()


def condition_problem(operator: str, value: Any) -> tuple[str, dict[str, str]] | None:
    """Why `operator` cannot take `value` as an English message template and its values (the
    models put the template into the reader's language), or None when it can."""
    if operator not in OPERATORS:
        return gettext_noop("Unknown operator '%(operator)s'."), {"operator": operator}
    if operator == "regex":
        if not isinstance(value, str) or not value:
            return gettext_noop("A regex rule needs a pattern."), {}
        try:
            re.compile(value)
        except re.error as exc:
            return gettext_noop("The regex does not compile: %(error)s."), {"error": str(exc)}
    elif operator in ("gte", "lte"):
        if _as_number(value) is None or isinstance(value, str):
            return gettext_noop("'%(operator)s' needs a number."), {"operator": operator}
    elif operator == "between":
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or any(_as_number(v) is None or isinstance(v, str) for v in value)
        ):
            return gettext_noop("'between' needs two numbers, e.g. [100, 1000]."), {}
        if float(value[0]) > float(value[1]):
            return gettext_noop("'between' needs the lower bound first."), {}
    elif operator == "in":
        if not isinstance(value, (list, tuple)) or not value:
            return gettext_noop("'in' needs a list of values."), {}
    elif operator in ("equals", "contains") and (value is None or (isinstance(value, str) and value == "")):
        return gettext_noop("'%(operator)s' needs a value."), {"operator": operator}
    return None


def validate_condition(operator: str, value: Any) -> str | None:
    """Why `operator` cannot take `value`, in English, or None when it can."""
    problem = condition_problem(operator, value)
    if problem is None:
        return None
    template, values = problem
    return template % values if values else template


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: Any
    _pattern: re.Pattern[str] | None = None
    _set: frozenset[str] | None = None

    @classmethod
    def build(cls, field_name: str, operator: str, value: Any) -> Condition:
        pattern = re.compile(value, re.IGNORECASE) if operator == "regex" else None
        values = frozenset(_text(v) for v in value) if operator == "in" else None
        return cls(field_name, operator, value, pattern, values)

    def matches(self, actual: Any) -> bool:
        op = self.operator
        if op == "is_empty":
            return _is_empty(actual)
        if actual is None:
            return False
        if op == "regex":
            return self._pattern.search(str(actual)) is not None  # type: ignore[union-attr]
        if op == "contains":
            return _text(self.value) in _text(actual)
        if op == "in":
            return _text(actual) in self._set  # type: ignore[operator]
        if op == "equals":
            left, right = _as_number(actual), _as_number(self.value)
            if left is not None and right is not None and not isinstance(actual, str):
                return left == right
            return _text(actual) == _text(self.value)
        number = _as_number(actual)
        if number is None:
            return False
        if op == "gte":
            return number >= float(self.value)
        if op == "lte":
            return number <= float(self.value)
        if op == "between":
            low, high = float(self.value[0]), float(self.value[1])
            return low <= number <= high
        return False


def fact(facts: Mapping[str, Any], name: str) -> Any:
    """A lead column, else a key of its `attributes` JSON."""
    if name in facts:
        return facts[name]
    attributes = facts.get("attributes") or {}
    return attributes.get(name) if isinstance(attributes, Mapping) else None


# --- Compiled definition -----------------------------------------------------------------


@dataclass(frozen=True)
class FitRuleSpec:
    name: str
    condition: Condition
    points: float


@dataclass(frozen=True)
class BehaviorRuleSpec:
    name: str
    event_type: str
    points: float
    max_occurrences: int | None = None
    half_life_days: float | None = None
    filter: Condition | None = None

    def applies(self, event_type: str, properties: Mapping[str, Any] | None) -> bool:
        if event_type != self.event_type:
            return False
        if self.filter is None:
            return True
        return self.filter.matches((properties or {}).get(self.filter.field))


@dataclass(frozen=True)
class KnockoutSpec:
    name: str
    condition: Condition


@dataclass(frozen=True)
class CompiledDefinition:
    version: int | None
    fit_threshold: float
    behavior_threshold: float
    required_fields: tuple[str, ...] = ()
    hand_raisers: frozenset[str] = frozenset()
    recycle_cooldown_days: float = 30
    fit_rules: tuple[FitRuleSpec, ...] = ()
    behavior_rules: tuple[BehaviorRuleSpec, ...] = ()
    knockouts: tuple[KnockoutSpec, ...] = ()
    # Event types some rule or the hand-raiser list cares about: others are never loaded.
    event_types: frozenset[str] = field(default=frozenset())


def compile_definition(data: Mapping[str, Any], *, version: int | None = None) -> CompiledDefinition:
    """Compile a definition given as the JSON of SPEC section 9."""
    fit = tuple(
        FitRuleSpec(r["name"], Condition.build(r["field"], r["operator"], r.get("value")), float(r["points"]))
        for r in data.get("fit_rules", [])
    )
    behavior = tuple(
        BehaviorRuleSpec(
            name=r["name"],
            event_type=r["event_type"],
            points=float(r["points"]),
            max_occurrences=r.get("max_occurrences") or None,
            half_life_days=r.get("half_life_days") or None,
            filter=(
                Condition.build(r["property"], r.get("property_operator") or "equals", r.get("property_value"))
                if r.get("property")
                else None
            ),
        )
        for r in data.get("behavior_rules", [])
    )
    knockouts = tuple(
        KnockoutSpec(r["name"], Condition.build(r["field"], r["operator"], r.get("value")))
        for r in data.get("knockouts", [])
    )
    hand_raisers = frozenset(data.get("hand_raisers") or ())
    return CompiledDefinition(
        version=version,
        fit_threshold=float(data.get("fit_threshold", 50)),
        behavior_threshold=float(data.get("behavior_threshold", 40)),
        required_fields=tuple(data.get("required_fields") or ()),
        hand_raisers=hand_raisers,
        recycle_cooldown_days=float(data.get("recycle_cooldown_days", 30)),
        fit_rules=fit,
        behavior_rules=behavior,
        knockouts=knockouts,
        event_types=frozenset(r.event_type for r in behavior) | hand_raisers,
    )


# --- Scoring -----------------------------------------------------------------------------


def fit_score(definition: CompiledDefinition, facts: Mapping[str, Any]) -> float:
    total = 0.0
    for rule in definition.fit_rules:
        if rule.condition.matches(fact(facts, rule.condition.field)):
            total += rule.points
    return clamp(total)


def knockouts_hit(definition: CompiledDefinition, facts: Mapping[str, Any]) -> list[str]:
    return [k.name for k in definition.knockouts if k.condition.matches(fact(facts, k.condition.field))]


def missing_fields(definition: CompiledDefinition, facts: Mapping[str, Any]) -> list[str]:
    return [name for name in definition.required_fields if _is_empty(fact(facts, name))]


# An event as the engine sees it: (type, occurred_at, properties).
EventTuple = tuple[str, dt.datetime, Mapping[str, Any] | None]


def _behavior_rows(
    definition: CompiledDefinition, events: Sequence[EventTuple], now: dt.datetime
) -> list[dict[str, Any]]:
    rows = []
    for rule in definition.behavior_rules:
        # The newest occurrences are the ones counted under a cap: they are worth the most.
        ages = sorted(
            (now - occurred_at).total_seconds() / SECONDS_PER_DAY
            for event_type, occurred_at, properties in events
            if rule.applies(event_type, properties)
        )
        counted = ages[: rule.max_occurrences] if rule.max_occurrences else ages
        before = rule.points * len(counted)
        after = sum(rule.points * decay_factor(age, rule.half_life_days) for age in counted)
        rows.append(
            {
                "name": rule.name,
                "event_type": rule.event_type,
                "occurrences": len(ages),
                "counted": len(counted),
                "max_occurrences": rule.max_occurrences,
                "half_life_days": rule.half_life_days,
                "points_each": rule.points,
                "points_before_decay": round(before, 2),
                "points_after_decay": round(after, 2),
                "_after": after,
            }
        )
    return rows


def behavior_score(definition: CompiledDefinition, events: Sequence[EventTuple], *, now: dt.datetime) -> float:
    """Sum over rules of decayed points of the newest `max_occurrences` matching events."""
    total = 0.0
    for rule in definition.behavior_rules:
        ages = sorted(
            (now - occurred_at).total_seconds() / SECONDS_PER_DAY
            for event_type, occurred_at, properties in events
            if event_type == rule.event_type and rule.applies(event_type, properties)
        )
        if rule.max_occurrences:
            ages = ages[: rule.max_occurrences]
        if rule.half_life_days:
            total += sum(rule.points * decay_factor(age, rule.half_life_days) for age in ages)
        else:
            total += rule.points * len(ages)
    # Rounded to hundredths so the seconds between an event and its scoring do not decide a
    # threshold (two fresh 20-point webinars are 40, not 39.99999).
    return round(clamp(total), 2)


@dataclass(frozen=True)
class Decision:
    qualifies: bool
    reason: str  # "score" or "hand_raiser" when qualifies; else empty
    why_not: tuple[str, ...] = ()


def gettext_noop(message: str) -> str:
    """Marks a message for the translation catalogue (makemessages extracts calls of this name)
    and returns it unchanged: the engine stays free of Django; `scoring.services` puts these
    lines into the reader's language (`why_not_in_words`)."""
    return message


# Why a lead is not an MQL, in English; the placeholders are filled with plain values.
WHY_NOT_STAGE = gettext_noop("The lead is already at stage '%(stage)s'.")
WHY_NOT_KNOCKOUT = gettext_noop("Knock-out: %(name)s.")
WHY_NOT_MISSING = gettext_noop("Missing required field(s): %(fields)s.")
WHY_NOT_FIT = gettext_noop("Fit %(score)s is below the threshold %(threshold)s.")
WHY_NOT_BEHAVIOR = gettext_noop("Behavior %(score)s is below the threshold %(threshold)s.")
WHY_NOT_COOLDOWN = gettext_noop("Recycled: cool-down runs until %(date)s unless the lead raises a hand.")
WHY_NOT_TEMPLATES = (WHY_NOT_STAGE, WHY_NOT_KNOCKOUT, WHY_NOT_MISSING, WHY_NOT_FIT, WHY_NOT_BEHAVIOR, WHY_NOT_COOLDOWN)


def decide(
    definition: CompiledDefinition,
    *,
    stage: str,
    stage_entered_at: dt.datetime | None,
    fit: float,
    behavior: float,
    knockouts: Sequence[str],
    missing: Sequence[str],
    hand_raised: bool,
    now: dt.datetime,
) -> Decision:
    """Whether a lead in `stage` becomes MQL now (SPEC section 2, first row)."""
    why_not: list[str] = []
    if stage not in ("lead", "recycled"):
        why_not.append(WHY_NOT_STAGE % {"stage": stage})
    for name in knockouts:
        why_not.append(WHY_NOT_KNOCKOUT % {"name": name})
    if missing:
        why_not.append(WHY_NOT_MISSING % {"fields": ", ".join(missing)})
    if fit < definition.fit_threshold:
        why_not.append(WHY_NOT_FIT % {"score": f"{fit:g}", "threshold": f"{definition.fit_threshold:g}"})
    if why_not:
        return Decision(False, "", tuple(why_not))
    if hand_raised:
        return Decision(True, "hand_raiser")
    if behavior < definition.behavior_threshold:
        return Decision(
            False,
            "",
            (WHY_NOT_BEHAVIOR % {"score": f"{behavior:g}", "threshold": f"{definition.behavior_threshold:g}"},),
        )
    if stage == "recycled" and stage_entered_at is not None:
        until = stage_entered_at + dt.timedelta(days=definition.recycle_cooldown_days)
        if now < until:
            return Decision(
                False,
                "",
                (WHY_NOT_COOLDOWN % {"date": f"{until:%Y-%m-%d}"},),
            )
    return Decision(True, "score")


def hand_raised(
    definition: CompiledDefinition,
    events: Iterable[EventTuple],
    *,
    stage: str,
    stage_entered_at: dt.datetime | None,
) -> bool:
    """A hand-raiser event; for a recycled lead it must come after the recycling."""
    return any(
        event_type in definition.hand_raisers
        and hand_raise_counts(occurred_at, stage=stage, stage_entered_at=stage_entered_at)
        for event_type, occurred_at, _ in events
    )


def hand_raise_counts(occurred_at: dt.datetime | None, *, stage: str, stage_entered_at: dt.datetime | None) -> bool:
    """Whether a hand-raiser event at `occurred_at` (None: there was none) still counts: for a
    recycled lead only one after the recycling does."""
    if occurred_at is None:
        return False
    return stage != "recycled" or stage_entered_at is None or occurred_at >= stage_entered_at


def explain(
    definition: CompiledDefinition,
    facts: Mapping[str, Any],
    events: Sequence[EventTuple],
    *,
    stage: str,
    stage_entered_at: dt.datetime | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """Every rule with whether it fired and its points; knock-outs, thresholds, decision."""
    fit_rows = []
    fit_total = 0.0
    for rule in definition.fit_rules:
        actual = fact(facts, rule.condition.field)
        fired = rule.condition.matches(actual)
        fit_total += rule.points if fired else 0.0
        fit_rows.append(
            {
                "name": rule.name,
                "field": rule.condition.field,
                "operator": rule.condition.operator,
                "value": rule.condition.value,
                "actual": actual if not isinstance(actual, Decimal) else float(actual),
                "fired": fired,
                "points": rule.points if fired else 0.0,
            }
        )
    behavior_rows = _behavior_rows(definition, events, now)
    behavior_total = sum(row.pop("_after") for row in behavior_rows)
    fit = clamp(fit_total)
    behavior = round(clamp(behavior_total), 2)
    knocked = knockouts_hit(definition, facts)
    missing = missing_fields(definition, facts)
    raised = hand_raised(definition, events, stage=stage, stage_entered_at=stage_entered_at)
    decision = decide(
        definition,
        stage=stage,
        stage_entered_at=stage_entered_at,
        fit=fit,
        behavior=behavior,
        knockouts=knocked,
        missing=missing,
        hand_raised=raised,
        now=now,
    )
    return {
        "definition_version": definition.version,
        "fit": {
            "score": round(fit, 2),
            "threshold": definition.fit_threshold,
            "grade": fit_grade(fit),
            "rules": fit_rows,
        },
        "behavior": {
            "score": round(behavior, 2),
            "threshold": definition.behavior_threshold,
            "rules": behavior_rows,
        },
        "knockouts": [
            {"name": k.name, "field": k.condition.field, "hit": k.name in knocked} for k in definition.knockouts
        ],
        "knockouts_hit": knocked,
        "missing_fields": missing,
        "hand_raiser": raised,
        "qualifies": decision.qualifies,
        "reason": decision.reason,
        "why_not": list(decision.why_not),
    }
