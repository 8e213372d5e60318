"""The report read model: fresh after every kind of write, equal to a rebuild on any history,
counting imported history at its historical dates, and patient with ids that commit late."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.lifecycle import Actor
from leads.lifecycle.moves import accept, promote_to_mql
from leads.models import ActorType, Lead, Stage, StageTransition, Team
from leads.services.importer import import_leads
from reports import readmodel, selectors
from reports.models import EntryFact, ReadModelState, RollupDay, RollupExit, RollupRepeat
from reports.selectors import ReportFilters
from tests.factories import LeadFactory
from tests.leads.services.test_importer import _csv

pytestmark = pytest.mark.django_db

WHOLE = (dt.date(2024, 1, 1), dt.date(2027, 12, 31))


def report(name: str, *, date_range=WHOLE, **kwargs):
    return selectors.REPORTS[name](date_from=date_range[0], date_to=date_range[1], filters=ReportFilters(), **kwargs)


def live(name: str, **kwargs):
    with override_settings(REPORTS_READ_MODEL=False):
        return report(name, **kwargs)


def entered(result: dict, stage: str) -> int:
    return next(row["entered"] for row in result["stages"] if row["stage"] == stage)


def tables() -> dict[str, list[tuple]]:
    """Every row of the read model's report tables, in a stable order (ids left out)."""

    def rows(model, *fields):
        return sorted(tuple(str(v) for v in row) for row in model.objects.values_list(*fields))

    return {
        "days": rows(RollupDay, *(f.attname for f in RollupDay._meta.concrete_fields[1:])),
        "repeats": rows(RollupRepeat, *(f.attname for f in RollupRepeat._meta.concrete_fields[1:])),
        "exits": rows(RollupExit, *(f.attname for f in RollupExit._meta.concrete_fields[1:])),
    }


# --- Fresh after each kind of write ------------------------------------------------------------


def test_a_promotion_and_an_accept_show_in_the_funnel_as_soon_as_they_commit(
    team, rep, django_capture_on_commit_callbacks
):
    readmodel.catch_up()
    lead = LeadFactory(team=team, owner=rep)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        promote_to_mql(lead, actor=Actor.system(), owner=rep)
    funnel = report("funnel", date_range=(timezone.localdate(), timezone.localdate()))
    assert entered(funnel, "mql") == 1
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        accept(Lead.objects.get(pk=lead.pk), actor=Actor.person(rep))
    funnel = report("funnel", date_range=(timezone.localdate(), timezone.localdate()))
    assert (entered(funnel, "mql"), entered(funnel, "sal")) == (1, 1)
    assert funnel == live("funnel", date_range=(timezone.localdate(), timezone.localdate()))
    assert ReadModelState.objects.get().as_of is not None


IMPORT_ROWS = [
    ["crm-1", "a@example.com", "Acme", "US", "", "", "2025-01-01", "2025-01-03", "2025-01-04 08:00", "", "", "", ""],
    [
        "crm-2",
        "b@example.com",
        "Beta",
        "US",
        "",
        "",
        "2025-01-02",
        "2025-01-06",
        "",
        "",
        "",
        "2025-01-09",
        "bad_timing",
    ],
]


def _assert_import_counted() -> None:
    january = (dt.date(2025, 1, 1), dt.date(2025, 1, 31))
    funnel = report("funnel", date_range=january)
    assert (entered(funnel, "lead"), entered(funnel, "mql"), entered(funnel, "sal")) == (2, 2, 1)
    assert entered(funnel, "recycled") == 1
    # At the historical dates: nothing on the day of the import.
    assert entered(report("funnel", date_range=(timezone.localdate(), timezone.localdate())), "mql") == 0
    for name in ("funnel", "efficiency", "sources", "rejections", "commitment"):
        assert report(name, date_range=january) == live(name, date_range=january), name


def test_an_imported_history_counts_at_its_historical_dates_as_soon_as_the_import_returns(
    marketer, django_capture_on_commit_callbacks
):
    readmodel.catch_up()
    with django_capture_on_commit_callbacks(execute=True):
        result = import_leads(io.StringIO(_csv(IMPORT_ROWS)), user=marketer)
    assert not result.rejected
    _assert_import_counted()


def test_the_import_api_is_reflected_in_the_reports_when_it_returns(marketer, django_capture_on_commit_callbacks):
    from tests.api.conftest import client_for

    readmodel.catch_up()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(marketer).generic("POST", "/api/v1/import/", _csv(IMPORT_ROWS), content_type="text/csv")
    assert response.status_code == 200, response.content
    _assert_import_counted()


def test_the_import_command_is_reflected_in_the_reports_when_it_returns(
    marketer, tmp_path, django_capture_on_commit_callbacks
):
    readmodel.catch_up()
    path = tmp_path / "history.csv"
    path.write_text(_csv(IMPORT_ROWS))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_leads", str(path), verbosity=0)
    _assert_import_counted()


# --- Incremental equals rebuilt ------------------------------------------------------------------

STAGES = [Stage.LEAD, Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON, Stage.LOST, Stage.RECYCLED, Stage.DISQUALIFIED]
REASONS = ["", "score", "bad_timing", "spam", "unable_to_reach"]

lead_spec = st.tuples(
    st.sampled_from(["ads", "webinar", ""]),
    st.sampled_from([0, 1, None]),  # team index
    st.sampled_from([0, 1, None]),  # owner index
    st.sampled_from(["US", "DE", ""]),
    st.integers(0, 20),  # created, days after the start
)
step = st.one_of(
    st.tuples(st.just("lead"), lead_spec),
    st.tuples(
        st.just("move"),
        st.tuples(
            st.integers(0, 50),  # which lead (modulo the leads so far)
            st.sampled_from(STAGES),
            st.sampled_from(STAGES),
            st.integers(0, 40 * 24),  # hours after the start: imports write the past too
            st.sampled_from(REASONS),
        ),
    ),
    st.tuples(st.just("catch_up"), st.integers(1, 3)),  # batches to run
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=40), batch=st.integers(1, 7))
def test_the_incremental_read_model_equals_a_rebuild_on_any_history(team, rep, rep2, steps, batch):
    """Rows counted in whatever batches, in whatever order their dates come, give the tables a
    rebuild gives, and the reports' live numbers (no lead changes hands in these histories)."""
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with transaction.atomic():
        teams = [team, Team.objects.create(name="EMEA")]
        owners = [rep, rep2]
        leads: list[Lead] = []
        with override_settings(REPORTS_CATCH_UP_BATCH=batch):
            for kind, spec in steps:
                if kind == "lead":
                    source, team_i, owner_i, country, day = spec
                    leads.append(
                        LeadFactory(
                            source=source,
                            team=None if team_i is None else teams[team_i],
                            owner=None if owner_i is None else owners[owner_i],
                            country=country,
                            created_at=start + dt.timedelta(days=day, hours=13),
                        )
                    )
                elif kind == "move" and leads:
                    index, from_stage, to_stage, hours, reason = spec
                    lead = leads[index % len(leads)]
                    StageTransition.objects.create(
                        lead=lead,
                        from_stage=from_stage,
                        to_stage=to_stage,
                        at=start + dt.timedelta(hours=hours),
                        actor_type=ActorType.SYSTEM,
                        reason=reason,
                        owner=lead.owner,
                    )
                elif kind == "catch_up":
                    readmodel.catch_up(max_batches=spec)
            readmodel.catch_up()
            incremental = tables()
            readmodel.rebuild()
            assert tables() == incremental
        span = (start.date(), start.date() + dt.timedelta(days=45))
        for name in ("funnel", "efficiency", "sources", "rejections", "commitment"):
            for group_by in (None, "source", "team"):
                assert report(name, date_range=span, group_by=group_by) == live(
                    name, date_range=span, group_by=group_by
                ), (name, group_by)
        transaction.set_rollback(True)


def test_rebuild_reports_command_gives_the_incremental_tables(history):
    readmodel.catch_up()
    incremental = tables()
    out = io.StringIO()
    call_command("rebuild_reports", stdout=out, verbosity=0)
    assert tables() == incremental
    assert "Counted 15 stage changes and 5 leads" in out.getvalue()


# --- Late commits and gaps -------------------------------------------------------------------------


def test_a_row_with_a_lower_id_that_commits_late_is_still_counted(history):
    """A concurrent transaction took id N, another committed N+1 first and was counted: the
    watermark waits below N, and N counts when it commits."""
    readmodel.catch_up()
    lead = history["a"]
    before = StageTransition.objects.order_by("-pk").first().pk
    late = StageTransition(
        pk=before + 1,
        lead=lead,
        from_stage=Stage.LEAD,
        to_stage=Stage.MQL,
        at=dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC),
        actor_type=ActorType.SYSTEM,
    )
    early = StageTransition.objects.create(
        pk=before + 2,
        lead=lead,
        from_stage=Stage.MQL,
        to_stage=Stage.SAL,
        at=dt.datetime(2026, 11, 20, 11, tzinfo=dt.UTC),
        actor_type=ActorType.SYSTEM,
    )
    readmodel.catch_up()
    state = ReadModelState.objects.get()
    assert state.transitions_upto == before  # waits at the gap
    assert EntryFact.objects.filter(transition_id=early.pk).exists()
    late.save(force_insert=True)  # commits now
    readmodel.catch_up()
    state.refresh_from_db()
    assert state.transitions_upto == early.pk
    day = (dt.date(2026, 11, 20), dt.date(2026, 11, 20))
    assert entered(report("funnel", date_range=day), "mql") == 1
    assert report("funnel", date_range=day) == live("funnel", date_range=day)


def test_a_gap_that_stays_empty_is_passed_after_the_gap_timeout(history):
    readmodel.catch_up()
    before = StageTransition.objects.order_by("-pk").first().pk
    StageTransition.objects.create(
        pk=before + 5,
        lead=history["a"],
        from_stage=Stage.WON,
        to_stage=Stage.WON,
        at=timezone.now(),
        actor_type=ActorType.SYSTEM,
    )
    readmodel.catch_up()
    assert ReadModelState.objects.get().transitions_upto == before
    state = ReadModelState.objects.get()
    assert list(state.gaps["transitions"]) == [str(before + 1)]
    # Time passes: the gap was first seen longer ago than the timeout (a rolled-back insert).
    long_ago = timezone.now() - dt.timedelta(seconds=readmodel.gap_seconds() + 1)
    state.gaps["transitions"] = {str(before + 1): long_ago.isoformat()}
    state.save()
    readmodel.catch_up()
    state = ReadModelState.objects.get()
    assert state.transitions_upto == before + 5
    assert state.gaps["transitions"] == {}


# --- Freshness ---------------------------------------------------------------------------------


def test_every_report_response_says_as_of_when_its_numbers_are(history, manager):
    from tests.api.conftest import client_for

    readmodel.catch_up()
    as_of = ReadModelState.objects.get().as_of
    client = client_for(manager)
    for name in ("funnel", "efficiency", "sources", "rejections", "commitment", "velocity"):
        response = client.get(f"/api/v1/reports/{name}/", {"from": "2026-11-02", "to": "2026-11-15"})
        assert response.status_code == 200, response.content
        body = response.json()
        stated = dt.datetime.fromisoformat(body["as_of"])
        if name == "velocity":  # live
            assert stated >= as_of
        else:
            assert stated == as_of
        assert response["X-Report-As-Of"] == body["as_of"]
        assert body["lag_seconds"] >= 0
    csv_response = client.get("/api/v1/reports/funnel/", {"format": "csv"})
    assert csv_response.status_code == 200
    assert dt.datetime.fromisoformat(csv_response["X-Report-As-Of"]) == as_of


def test_the_dashboard_says_as_of_when_and_warns_when_reports_lag_more_than_a_minute(client, manager):
    readmodel.catch_up()
    client.force_login(manager)
    page = client.get("/dashboard/").content.decode()
    assert "Counts as of" in page
    assert 'id="report-lag"' not in page
    ReadModelState.objects.update(as_of=timezone.now() - dt.timedelta(minutes=5))
    page = client.get("/dashboard/").content.decode()
    assert 'id="report-lag"' in page
    assert "seconds behind the latest changes" in page
