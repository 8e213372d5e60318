"""Fit rules learnt from won and lost leads: pure code (facts and outcomes in, rules out).

`scoring.suggest` loads the history and saves the draft; this module does the learning so that
tests and `bench/suggest.py` run it on generated leads without a database. Every feature is an
`engine.Condition`, so a learnt column and the rule written for it match exactly the same leads,
and held-out leads are scored by `engine.fit_score` itself: the figures are those of the rules a
marketer will sign, after rounding, merging and clamping, not of the model behind them.

scikit-learn is an optional extra (`pip install leadflow[suggest]`): it is imported when a
suggestion is asked for, and its absence is a `SuggestError` that says how to install it.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext

from . import engine

MIN_OUTCOMES = 50  # won, and not won, needed to learn anything
DEFAULT_TARGET_MQL_RATE = 0.2
N_BINS = 5
REGULARISATION_C = 1.0  # scikit-learn's C: smaller shrinks points harder toward 0
HELD_OUT_SHARE = 0.3
SEED = 42
CATEGORICAL_COLUMNS = ("source", "country", "industry", "job_title")
NUMERIC_COLUMNS = ("employees", "annual_revenue")
WORD_FIELDS = ("job_title",)  # free text: learnt word by word (`regex \bvp\b`), not value by value
MAX_NAME, MAX_FIELD = 200, 100  # FitRule.name and FitRule.field lengths
# Leads learnt from at most: the one-hot matrix is dense (leads x columns floats), and beyond
# this many the points no longer move (bench/suggest.py).
MAX_LEADS = 200_000
STOP_WORDS = frozenset({"of", "and", "the", "for", "to", "in", "at", "a", "an", "&"})
SHRINKAGE_NOTE = (
    "Points from an L2-regularised logistic regression (C={c}) on all suggested fields at once: "
    "shrunk toward 0 for rare values, and net of the other rules, so they can differ from the lift."
)


class SuggestError(Exception):
    """A suggestion that cannot be made; `code` is stable, `message` says what to do."""

    def __init__(self, message: str, *, code: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = fields or {}


def _sklearn() -> Any:
    """The optional dependency, imported on use so the app runs without it."""
    try:
        import numpy
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise SuggestError(
            gettext("Suggesting a definition needs scikit-learn: pip install 'leadflow[suggest]'."),
            code="suggest_unavailable",
        ) from None
    return numpy, LogisticRegression, roc_auc_score, train_test_split


# --- Features: one engine condition per one-hot column ---------------------------------------


@dataclass
class Column:
    condition: engine.Condition | None  # None: the pooled "other" values, which no rule names
    label: str
    order: int = 0  # position of a numeric bin, to merge neighbours with equal points


@dataclass
class Group:
    """The columns learnt from one field: values (categorical), words or bins (numeric)."""

    field: str
    kind: str  # "values", "words", "bins"
    columns: list[Column] = dataclasses.field(default_factory=list)
    reference: int | None = None  # column whose points are 0 (the rules are relative to it)
    complete: bool = False  # every lead falls in exactly one column: may carry the base points


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _is_numeric(name: str, values: list[Any]) -> bool:
    if name in NUMERIC_COLUMNS:
        return True
    present = [v for v in values if not (v is None or v == "")]
    return bool(present) and sum(_number(v) is not None for v in present) >= 0.95 * len(present)


def _min_count(n: int) -> int:
    """Leads a value needs to be learnt on its own; rarer values are pooled."""
    return max(10, round(0.01 * n))


def _value_group(name: str, values: list[Any], n: int) -> Group | None:
    texts = ["" if v is None else str(v).strip() for v in values]
    counts = Counter(t.casefold() for t in texts if t)
    spelling: dict[str, str] = {}
    for text in texts:
        spelling.setdefault(text.casefold(), text)
    kept = [v for v, c in counts.most_common() if c >= _min_count(n)]
    empty = sum(1 for t in texts if not t)
    group = Group(name, "values")
    for value in kept:
        group.columns.append(Column(engine.Condition.build(name, "in", [spelling[value]]), spelling[value]))
    if empty:
        group.columns.append(Column(engine.Condition.build(name, "is_empty", None), "(empty)"))
    pooled = sum(c for v, c in counts.items() if v not in set(kept))
    if pooled:
        group.columns.append(Column(None, "other"))
    if len(group.columns) < 2:
        return None
    sizes = [
        pooled if c.condition is None else empty if c.condition.operator == "is_empty" else counts[c.label.casefold()]
        for c in group.columns
    ]
    group.reference = len(group.columns) - 1 if pooled else max(range(len(sizes)), key=sizes.__getitem__)
    group.complete = not pooled
    return group


def _word_group(name: str, values: list[Any], n: int) -> Group | None:
    words: Counter[str] = Counter()
    for value in values:
        words.update({w for w in re.findall(r"\w+", str(value or "").casefold()) if w not in STOP_WORDS})
    group = Group(name, "words")
    for word, count in sorted(words.items()):
        if len(word) > 1 and _min_count(n) <= count <= 0.95 * n:
            pattern = rf"(?i)\b{re.escape(word)}\b"
            group.columns.append(Column(engine.Condition.build(name, "regex", pattern), word))
    return group if group.columns else None


def _step(numbers: list[float]) -> float:
    """The data's resolution, so that bins [a, b - step] leave no gap between neighbours."""
    for step in (1.0, 0.1, 0.01):
        if all(abs(x / step - round(x / step)) < 1e-6 for x in numbers):
            return step
    return 0.01


def _bin_group(name: str, values: list[Any], np: Any) -> Group | None:
    numbers = [x for x in (_number(v) for v in values) if x is not None]
    if len(set(numbers)) < 2:
        return None
    step = _step(numbers)
    quantiles = np.quantile(numbers, [i / N_BINS for i in range(1, N_BINS)])
    edges = sorted({round(math.ceil(q / step - 1e-9) * step, 2) for q in quantiles} - {min(numbers)})
    edges = [e for e in edges if min(numbers) < e <= max(numbers)]
    if not edges:
        return None

    def show(x: float) -> str:
        return f"{x:g}"

    group = Group(name, "bins", complete=True)
    bounds = [None, *edges, None]
    for i in range(len(bounds) - 1):
        low, high = bounds[i], bounds[i + 1]
        top = None if high is None else round(high - step, 2)
        if low is None:
            column = Column(engine.Condition.build(name, "lte", top), f"≤ {show(top or 0)}", order=i)
        elif top is None:
            column = Column(engine.Condition.build(name, "gte", low), f"≥ {show(low)}", order=i)
        else:
            column = Column(engine.Condition.build(name, "between", [low, top]), f"{show(low)}–{show(top)}", order=i)
        group.columns.append(column)
    if len(numbers) < len(values):
        group.columns.append(Column(engine.Condition.build(name, "is_empty", None), "(empty)", order=-1))
    group.reference = len(group.columns) - 1 if len(numbers) < len(values) else 0
    return group


def build_groups(
    rows: Sequence[Mapping[str, Any]], names: Sequence[str], np: Any
) -> tuple[list[Group], list[dict[str, str]]]:
    """The learnable fields among `names`, and the others with the reason they were skipped."""
    groups: list[Group] = []
    skipped: list[dict[str, str]] = []
    n = len(rows)
    for name in dict.fromkeys(names):  # each field once, in the order asked
        values = [engine.fact(row, name) for row in rows]
        present = sum(1 for v in values if not (v is None or (isinstance(v, str) and not v.strip())))
        if len(name) > MAX_FIELD or present < _min_count(n):
            skipped.append({"field": name, "reason": "name_too_long" if len(name) > MAX_FIELD else "no_data"})
            continue
        if name in WORD_FIELDS:
            group = _word_group(name, values, n)
        elif _is_numeric(name, values):
            group = _bin_group(name, values, np)
        else:
            group = _value_group(name, values, n)
        if group is None:
            skipped.append({"field": name, "reason": "no_variation"})
        else:
            groups.append(group)
    return groups, skipped


def candidate_fields(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every field a fit rule may name and the history holds: lead columns, then attribute keys."""
    keys: set[str] = set()
    for row in rows:
        attributes = row.get("attributes")
        if isinstance(attributes, Mapping):
            keys.update(str(k) for k in attributes)
    columns = [*CATEGORICAL_COLUMNS, *NUMERIC_COLUMNS]
    return columns + sorted(keys - set(columns))


def design_matrix(groups: Sequence[Group], rows: Sequence[Mapping[str, Any]], np: Any) -> Any:
    width = sum(len(g.columns) for g in groups)
    matrix = np.zeros((len(rows), width))
    for r, row in enumerate(rows):
        offset = 0
        for group in groups:
            actual = engine.fact(row, group.field)
            hit = False
            for c, column in enumerate(group.columns):
                if column.condition is not None and column.condition.matches(actual):
                    matrix[r, offset + c] = 1.0
                    hit = True
                elif column.condition is None and not hit and group.kind == "values":
                    matrix[r, offset + c] = 1.0
            offset += len(group.columns)
    return matrix


# --- From the model's coefficients to rules a marketer reads ---------------------------------


@dataclass
class Suggestion:
    fit_rules: list[dict[str, Any]]
    fit_threshold: float
    skipped: list[dict[str, str]]
    validation: dict[str, Any]


def _group_points(groups: Sequence[Group], coef: Any, matrix: Any, np: Any) -> list[list[int]]:
    """Whole points per column: each field's reference column at 0, then one scale and one base
    for all, so the 1st to 99th percentile of training leads spans 2 to 98 (no pile at the clamp).
    The base goes to a field every lead falls in once (numeric bins first), as ordinary rules."""
    shifted: list[list[float]] = []
    offset = 0
    for group in groups:
        values = [float(c) for c in coef[offset : offset + len(group.columns)]]
        ref = values[group.reference] if group.reference is not None else 0.0
        shifted.append([v - ref for v in values])
        offset += len(group.columns)
    raw = matrix @ np.array([v for values in shifted for v in values])
    low, high = (float(q) for q in np.quantile(raw, [0.01, 0.99]))
    scale = 96.0 / (high - low) if high > low else 1.0
    anchors = [g for g in groups if g.complete]
    anchor = next((g for g in anchors if g.kind == "bins"), anchors[0] if anchors else None)
    base = 2.0 - scale * low if anchor is not None else 0.0
    return [
        [round(scale * v + (base if group is anchor else 0.0)) for v in values]
        for group, values in zip(groups, shifted, strict=True)
    ]


def _rule(name: str, field_name: str, operator: str, value: Any, points: int) -> dict[str, Any]:
    name = name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"  # FitRule.name holds 200
    return {"name": name, "field": field_name, "operator": operator, "value": value, "points": points}


def _merge_bins(group: Group, points: list[int]) -> list[dict[str, Any]]:
    """Neighbouring bins with the same points become one `between` (or ≤ / ≥) rule."""
    bins = sorted((c.order, c, p) for c, p in zip(group.columns, points, strict=True) if c.order >= 0)
    runs: list[list[tuple[Column, int]]] = []
    for _, column, p in bins:
        if runs and runs[-1][-1][1] == p:
            runs[-1].append((column, p))
        else:
            runs.append([(column, p)])
    if len(runs) == 1:  # one run would need "any number": keep the bins
        runs = [[(column, p)] for _, column, p in bins]
    rules = []
    for run in runs:
        p = run[0][1]
        if not p:
            continue
        first, last = run[0][0].condition, run[-1][0].condition
        assert first is not None and last is not None
        low = None if first.operator == "lte" else first.value if first.operator == "gte" else first.value[0]
        high = None if last.operator == "gte" else last.value if last.operator == "lte" else last.value[1]
        if low is None:
            rules.append(_rule(f"{group.field} ≤ {high:g}", group.field, "lte", high, p))
        elif high is None:
            rules.append(_rule(f"{group.field} ≥ {low:g}", group.field, "gte", low, p))
        else:
            label = f"= {low:g}" if low == high else f"{low:g}–{high:g}"
            rules.append(_rule(f"{group.field} {label}", group.field, "between", [low, high], p))
    return rules


def _rules(groups: Sequence[Group], points: list[list[int]]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for group, group_points in zip(groups, points, strict=True):
        pairs = list(zip(group.columns, group_points, strict=True))
        for column, p in pairs:
            if column.condition is not None and column.condition.operator == "is_empty" and p:
                rules.append(_rule(f"{group.field} is empty", group.field, "is_empty", None, p))
        if group.kind == "bins":
            rules.extend(_merge_bins(group, group_points))
        elif group.kind == "words":
            for column, p in pairs:
                if p and column.condition is not None:
                    rules.append(
                        _rule(
                            f"{group.field} mentions '{column.label}'", group.field, "regex", column.condition.value, p
                        )
                    )
        else:
            by_points: dict[int, list[str]] = {}
            for column, p in pairs:
                if p and column.condition is not None and column.condition.operator == "in":
                    by_points.setdefault(p, []).append(column.label)
            for p, values in sorted(by_points.items(), key=lambda item: -item[0]):
                rules.append(_rule(f"{group.field} is {', '.join(values)}", group.field, "in", values, p))
    return rules


def _wilson(won: int, n: int, z: float = 1.96) -> list[float]:
    """95 % interval of a won rate: honest for small counts, where the plain one is not."""
    if not n:
        return [0.0, 1.0]
    rate = won / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)]


def add_evidence(rules: list[dict[str, Any]], rows: Sequence[Mapping[str, Any]], won: Sequence[bool]) -> None:
    """Each rule's leads matched, won among them, lift over the base rate, and its interval."""
    base = sum(won) / len(won)
    note = SHRINKAGE_NOTE.format(c=REGULARISATION_C)
    for rule in rules:
        condition = engine.Condition.build(rule["field"], rule["operator"], rule["value"])
        hits = [w for row, w in zip(rows, won, strict=True) if condition.matches(engine.fact(row, rule["field"]))]
        matched, won_count = len(hits), sum(hits)
        rate = won_count / matched if matched else 0.0
        rule["evidence"] = {
            "matched": matched,
            "won": won_count,
            "won_rate": round(rate, 3),
            "lift": round(rate / base, 2) if base else None,
            "ci95": _wilson(won_count, matched),
            "note": note,
        }


def propose_threshold(scores: Sequence[float], target_rate: float) -> int:
    """The whole-point threshold whose share of leads at or above it is nearest the target."""
    n = len(scores)
    return min(range(101), key=lambda t: (abs(sum(1 for s in scores if s >= t) / n - target_rate), t))


def figures(scores: Sequence[float], won: Sequence[bool], *, threshold: float, roc_auc: Any) -> dict[str, Any]:
    """AUC, lift by score decile, MQL rate and won share at the threshold, clamp piles."""
    n, total_won = len(scores), sum(won)
    base = total_won / n
    mql = [w for s, w in zip(scores, won, strict=True) if s >= threshold]
    ranked = sorted(zip(scores, won, strict=True), key=lambda pair: -pair[0])
    deciles = []
    for d in range(10):
        chunk = ranked[d * n // 10 : (d + 1) * n // 10]
        chunk_won = sum(w for _, w in chunk)
        rate = chunk_won / len(chunk) if chunk else 0.0
        deciles.append(
            {"decile": d + 1, "leads": len(chunk), "won": chunk_won, "lift": round(rate / base, 2) if base else None}
        )
    return {
        "auc": round(float(roc_auc(list(won), list(scores))), 4),
        "threshold": threshold,
        "mql_rate": round(len(mql) / n, 3),
        "won_share": round(sum(mql) / total_won, 3) if total_won else None,
        "precision": round(sum(mql) / len(mql), 3) if mql else None,
        "at_0": round(sum(1 for s in scores if s <= 0) / n, 3),
        "at_100": round(sum(1 for s in scores if s >= 100) / n, 3),
        "lift_by_decile": deciles,
    }


def check_history(won: Sequence[bool]) -> None:
    n_won, n_not = sum(won), len(won) - sum(won)
    if n_won < MIN_OUTCOMES or n_not < MIN_OUTCOMES:
        raise SuggestError(
            gettext(
                "A suggestion needs at least %(min)s won and %(min)s lost, disqualified or recycled leads; "
                "the history holds %(won)s won and %(not_won)s not won."
            )
            % {"min": MIN_OUTCOMES, "won": n_won, "not_won": n_not},
            code="too_little_history",
            fields={"history": {"needed": MIN_OUTCOMES, "won": n_won, "not_won": n_not}},
        )


def learn(
    rows: Sequence[Mapping[str, Any]],
    won: Sequence[bool],
    *,
    fields: Sequence[str] | None = None,
    target_mql_rate: float = DEFAULT_TARGET_MQL_RATE,
    seed: int = SEED,
    active: engine.CompiledDefinition | None = None,
) -> Suggestion:
    """Fit rules learnt on a stratified, seeded 70 % of the history, measured on the other 30 %
    beside the `active` definition's own rules and threshold on the same leads."""
    np, logistic_regression, roc_auc, split = _sklearn()
    check_history(won)
    if len(rows) > MAX_LEADS:
        keep = sorted(random.Random(seed).sample(range(len(rows)), MAX_LEADS))
        rows, won = [rows[i] for i in keep], [won[i] for i in keep]
    outcomes = np.array([int(bool(w)) for w in won])
    train, test = split(
        np.arange(len(rows)), test_size=HELD_OUT_SHARE, stratify=outcomes, random_state=seed, shuffle=True
    )
    train_rows, test_rows = [rows[i] for i in train], [rows[i] for i in test]
    train_won, test_won = [bool(outcomes[i]) for i in train], [bool(outcomes[i]) for i in test]
    groups, skipped = build_groups(train_rows, list(fields or candidate_fields(train_rows)), np)
    if not groups:
        raise SuggestError(
            gettext("None of the fields varies enough among leads with an outcome to learn from."),
            code="no_usable_fields",
            fields={"fields": [s["field"] for s in skipped]},
        )
    matrix = design_matrix(groups, train_rows, np)
    model = logistic_regression(C=REGULARISATION_C, max_iter=2000).fit(matrix, outcomes[train])
    rules = _rules(groups, _group_points(groups, model.coef_[0], matrix, np))
    add_evidence(rules, train_rows, train_won)
    draft = engine.compile_definition({"fit_rules": rules})
    threshold = propose_threshold([engine.fit_score(draft, row) for row in train_rows], target_mql_rate)
    scores = [engine.fit_score(draft, row) for row in test_rows]
    validation: dict[str, Any] = {
        "trained_on": len(train_rows),
        "held_out": len(test_rows),
        "seed": seed,
        "target_mql_rate": target_mql_rate,
        "suggestion": figures(scores, test_won, threshold=threshold, roc_auc=roc_auc),
        "active": None,
    }
    if active is not None:
        active_scores = [engine.fit_score(active, row) for row in test_rows]
        validation["active"] = {
            "version": active.version,
            **figures(active_scores, test_won, threshold=active.fit_threshold, roc_auc=roc_auc),
        }
    return Suggestion(fit_rules=rules, fit_threshold=threshold, skipped=skipped, validation=validation)
