"""The pure engine, alone: no database."""

from __future__ import annotations

import datetime as dt

import pytest

from scoring import engine

from .conftest import SPEC_DEFINITION

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
DEFINITION = engine.compile_definition(SPEC_DEFINITION, version=1)
VP = {"email": "ana@acme.example", "company": "Acme", "employees": 500, "job_title": "VP Marketing"}


def events(*items: tuple[str, float, dict | None]) -> list[engine.EventTuple]:
    return [(kind, NOW - dt.timedelta(days=age), props) for kind, age, props in items]


def test_vp_at_a_500_person_company_has_fit_55_grade_b():
    assert engine.fit_score(DEFINITION, VP) == 55
    assert engine.fit_grade(55) == "B"


def test_capped_webinars_and_pricing_views_give_behavior_70_when_fresh():
    seen = events(*[("webinar_attended", 0, {})] * 3, *[("page_view", 0, {"url": "/pricing"})] * 5)
    assert engine.behavior_score(DEFINITION, seen, now=NOW) == pytest.approx(70)


def test_a_20_point_event_counts_10_after_one_30_day_half_life():
    rules = {"behavior_rules": [{"name": "Ebook", "event_type": "ebook", "points": 20, "half_life_days": 30}]}
    definition = engine.compile_definition(rules)
    assert engine.behavior_score(definition, events(("ebook", 30, {})), now=NOW) == pytest.approx(10)
    assert engine.behavior_score(definition, events(("ebook", 0, {})), now=NOW) == pytest.approx(20)


def test_no_half_life_means_no_decay():
    rules = {"behavior_rules": [{"name": "Ebook", "event_type": "ebook", "points": 20, "half_life_days": None}]}
    definition = engine.compile_definition(rules)
    assert engine.behavior_score(definition, events(("ebook", 400, {})), now=NOW) == 20


def test_the_newest_occurrences_are_counted_under_a_cap():
    seen = events(("webinar_attended", 120, {}), ("webinar_attended", 0, {}), ("webinar_attended", 0, {}))
    assert engine.behavior_score(DEFINITION, seen, now=NOW) == pytest.approx(40)


def test_property_filter_ignores_other_pages():
    seen = events(("page_view", 0, {"url": "/blog"}), ("page_view", 0, {}), ("page_view", 0, None))
    assert engine.behavior_score(DEFINITION, seen, now=NOW) == 0


def test_negative_points_lower_the_score_and_scores_are_clamped():
    rules = {
        "fit_rules": [
            {"name": "Student", "field": "job_title", "operator": "contains", "value": "student", "points": -40}
        ],
        "behavior_rules": [
            {"name": "Unsubscribe", "event_type": "unsubscribe", "points": -30, "half_life_days": None},
            {"name": "Visit", "event_type": "visit", "points": 60, "half_life_days": None},
        ],
    }
    definition = engine.compile_definition(rules)
    assert engine.fit_score(definition, {"job_title": "PhD STUDENT"}) == 0
    seen = events(("visit", 0, {}), ("visit", 0, {}), ("unsubscribe", 0, {}))
    assert engine.behavior_score(definition, seen, now=NOW) == 90


@pytest.mark.parametrize(
    ("operator", "value", "actual", "expected"),
    [
        ("equals", "germany", "Germany", True),
        ("equals", 500, 500, True),
        ("in", ["US", "CA"], "us", True),
        ("in", ["US", "CA"], "DE", False),
        ("contains", "/pricing", "https://x/PRICING/enterprise", True),
        ("regex", r"\bvp\b", "VP Sales", True),
        ("gte", 100, 99, False),
        ("lte", 100, 100, True),
        ("between", [100, 1000], 500, True),
        ("between", [100, 1000], 1001, False),
        ("is_empty", None, "", True),
        ("is_empty", None, "x", False),
        ("gte", 100, None, False),
        ("gte", 100, "not a number", False),
    ],
)
def test_operators(operator, value, actual, expected):
    assert engine.Condition.build("f", operator, value).matches(actual) is expected


def test_rules_read_keys_of_the_attributes_json():
    rules = {
        "fit_rules": [
            {"name": "Uses Salesforce", "field": "crm", "operator": "equals", "value": "salesforce", "points": 15}
        ]
    }
    definition = engine.compile_definition(rules)
    assert engine.fit_score(definition, {"attributes": {"crm": "Salesforce"}}) == 15


@pytest.mark.parametrize(
    ("operator", "value", "message"),
    [
        ("regex", "(unclosed", "does not compile"),
        ("gte", "a hundred", "needs a number"),
        ("between", [100], "two numbers"),
        ("between", [1000, 100], "lower bound first"),
        ("in", "US", "list"),
    ],
)
def test_validation_names_the_problem(operator, value, message):
    assert message in engine.validate_condition(operator, value)


def test_free_mail_knockout_blocks_mql_whatever_the_score():
    facts = {**VP, "email": "ana@gmail.com"}
    assert engine.knockouts_hit(DEFINITION, facts) == ["Free mail"]
    decision = engine.decide(
        DEFINITION,
        stage="lead",
        stage_entered_at=None,
        fit=55,
        behavior=70,
        knockouts=["Free mail"],
        missing=[],
        hand_raised=True,
        now=NOW,
    )
    assert not decision.qualifies
    assert "Knock-out: Free mail." in decision.why_not


def test_recycled_lead_waits_for_the_cool_down_unless_it_raises_a_hand():
    recycled_at = NOW - dt.timedelta(days=10)
    common = {
        "stage": "recycled",
        "stage_entered_at": recycled_at,
        "fit": 55,
        "behavior": 70,
        "knockouts": [],
        "missing": [],
        "now": NOW,
    }
    assert not engine.decide(DEFINITION, hand_raised=False, **common).qualifies
    assert engine.decide(DEFINITION, hand_raised=True, **common).reason == "hand_raiser"
    later = {**common, "now": recycled_at + dt.timedelta(days=30)}
    assert engine.decide(DEFINITION, hand_raised=False, **later).qualifies


def test_a_hand_raiser_before_recycling_does_not_count_again():
    recycled_at = NOW - dt.timedelta(days=5)
    old = events(("demo_request", 20, {}))
    assert not engine.hand_raised(DEFINITION, old, stage="recycled", stage_entered_at=recycled_at)
    assert engine.hand_raised(
        DEFINITION, events(("demo_request", 1, {})), stage="recycled", stage_entered_at=recycled_at
    )


def test_explanation_lists_rules_with_points_before_and_after_decay():
    seen = events(("webinar_attended", 60, {}), ("page_view", 0, {"url": "/pricing"}))
    data = engine.explain(DEFINITION, VP, seen, stage="lead", stage_entered_at=None, now=NOW)
    webinar = next(r for r in data["behavior"]["rules"] if r["name"] == "Webinar")
    assert (webinar["occurrences"], webinar["points_before_decay"], webinar["points_after_decay"]) == (1, 20, 10)
    assert data["behavior"]["score"] == 20
    assert [r["name"] for r in data["fit"]["rules"] if r["fired"]] == ["Mid-market or larger", "Decision maker"]
    assert data["qualifies"] is False
    assert data["why_not"] == ["Behavior 20 is below the threshold 40."]
