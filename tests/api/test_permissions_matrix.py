"""Who may take each action of the API (SPEC section 1), route by route.

The routes are read from the URL resolver, not listed by hand: an endpoint or action added under
/api/v1/ without a row in EXPECTED fails `test_every_api_action_has_a_row`, so nobody adds one
without deciding who may use it. Each row names the roles allowed; every other role must be
refused (403 `permission_denied`, 401 when not signed in) and a superuser is allowed everything.
"Allowed" means not refused: on the lead a request is made against, a move may still be a 409
or a body a 400. OPTIONS (metadata) and HEAD (GET's answer without the body) are not actions.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from leads.api import WebhookViewSet
from leads.models import ImportJob, Stage, WebhookSubscription
from scoring import definitions
from scoring.api import DefinitionViewSet
from tests.api.conftest import client_for
from tests.factories import LeadFactory, make_user
from tests.scoring.conftest import SPEC_DEFINITION

pytestmark = pytest.mark.django_db

API = "api/v1/"
M, REP, SM, AE, ANON = "marketing", "sales_rep", "sales_manager", "account_executive", "anonymous"
EVERY_ROLE = {M, REP, SM, AE}
LEAD_WRITERS = {M, SM}
MOVERS = {REP, SM}  # reps on their own leads and their team's unassigned MQLs
PUBLIC = {M, REP, SM, AE, ANON}

# Route name -> "METHOD action" (a viewset's action) or "METHOD" (an APIView) -> roles allowed.
EXPECTED: dict[str, dict[str, set[str]]] = {
    "api-lead-list": {"GET list": EVERY_ROLE, "POST create": LEAD_WRITERS},
    "api-lead-detail": {"GET retrieve": EVERY_ROLE, "PATCH partial_update": LEAD_WRITERS},
    "api-lead-bulk": {"POST bulk": LEAD_WRITERS},
    # SPEC section 1 puts export with the writes (reps: no). Reps have always exported the leads
    # they may read, and #17 changes no behaviour: kept, to be decided.
    "api-lead-export": {"GET export_csv": EVERY_ROLE},
    "api-lead-export-csv": {"GET export_csv": EVERY_ROLE},
    "api-lead-history": {"GET history": EVERY_ROLE},
    "api-lead-accept": {"POST accept": MOVERS},
    "api-lead-reject": {"POST reject": MOVERS},
    "api-lead-qualify": {"POST qualify": MOVERS},
    "api-lead-recycle": {"POST recycle": MOVERS},
    "api-lead-disqualify": {"POST disqualify": MOVERS},
    # An AE logs meetings and calls on the SQLs they own (a lead not theirs is a 404).
    "api-lead-touches": {"POST touches": MOVERS | {AE}},
    # Won/lost: managers, and the AE who owns the SQL (issue 25).
    "api-lead-close": {"POST close": {SM, AE}},
    "api-lead-score": {"GET": EVERY_ROLE},
    "api-events": {"POST": LEAD_WRITERS},
    "api-import": {"POST": LEAD_WRITERS},
    "api-import-job": {"GET": LEAD_WRITERS},
    "api-import-job-rejects": {"GET": LEAD_WRITERS},
    "api-webhook-list": {"GET list": {SM}, "POST create": {SM}},
    "api-webhook-detail": {
        "GET retrieve": {SM},
        "PATCH partial_update": {SM},
        "DELETE destroy": {SM},
    },
    # Every role reads definitions (a rep sees what qualifies a lead); only marketing drafts.
    "api-definition-list": {"GET list": EVERY_ROLE, "POST create": {M}},
    "api-definition-detail": {"GET retrieve": EVERY_ROLE, "PATCH partial_update": {M}},
    "api-definition-sign": {"POST sign": LEAD_WRITERS},
    "api-definition-activate": {"POST activate": LEAD_WRITERS},
    "api-definition-preview": {"GET preview": LEAD_WRITERS},
    "api-definition-suggest": {"POST suggest": {M}},
    # SPEC gives reps their own figures; the reports API has never served those to reps.
    **{
        f"report-{name}": {"GET": LEAD_WRITERS}
        for name in ("funnel", "efficiency", "velocity", "rejections", "commitment", "sources")
    },
    # Each user manages their own API tokens (another's token is a 404, never listed).
    "api-token-list": {"GET list": EVERY_ROLE, "POST create": EVERY_ROLE},
    "api-token-detail": {"DELETE destroy": EVERY_ROLE},
    # People (issue 21): possible duplicates, merge, privacy requests, consent (SPEC section 1).
    "api-lead-duplicates": {"GET": LEAD_WRITERS},
    "api-lead-merge": {"POST": LEAD_WRITERS},
    "api-lead-privacy-export": {"GET": LEAD_WRITERS},
    "api-lead-erase": {"POST": LEAD_WRITERS},
    "api-lead-consent": {"GET": LEAD_WRITERS, "POST": LEAD_WRITERS},
    # The OpenAPI schema and its viewer describe the API; they hold no data.
    "schema": {"GET": PUBLIC},
    "api-docs": {"GET": PUBLIC},
}


def _api_routes() -> dict[str, URLPattern]:
    """Route name -> its pattern, for every route under /api/v1/."""
    found: dict[str, URLPattern] = {}

    def walk(patterns: list, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif route.startswith(API):
                assert pattern.name, f"/{route} has no name to list it under"
                found[pattern.name] = pattern

    walk(get_resolver().url_patterns, "")
    return found


def _actions(callback) -> list[str]:
    """The actions a route offers: a viewset route's HTTP method -> action map, or the HTTP
    methods an APIView handles; only the methods the view accepts at all."""
    view = callback.cls
    by_method = getattr(callback, "actions", None)
    if by_method:
        return sorted(
            f"{method.upper()} {action}"
            for method, action in by_method.items()
            if method in view.http_method_names and method not in ("head", "options")
        )
    return sorted(
        method.upper()
        for method in view.http_method_names
        if method not in ("head", "options") and hasattr(view, method)
    )


ROUTES = _api_routes()
CASES = [(name, action) for name, route in sorted(ROUTES.items()) for action in _actions(route.callback)]


def test_every_api_action_has_a_row():
    found = {f"{name} {action}" for name, action in CASES}
    listed = {f"{name} {action}" for name, actions in EXPECTED.items() for action in actions}
    assert found - listed == set(), "actions nobody has decided who may take: add them to EXPECTED"
    assert listed - found == set(), "rows for actions the API no longer has"


def _url(name: str, *, rep, team, marketer) -> str:
    """The route's URL against a fresh object the request may act on: a lead the rep owns, in
    the stage a rep acts on first, a draft definition or a webhook subscription."""
    route = ROUTES[name]
    if "pk" not in route.pattern.regex.groupindex:
        return reverse(name)
    view = route.callback.cls
    if issubclass(view, DefinitionViewSet):
        pk = definitions.create_definition(SPEC_DEFINITION, user=marketer).pk
    elif name.startswith("api-import-job"):
        pk = ImportJob.objects.create(created_by=marketer, status="done", result={"rejected": []}).pk
    elif issubclass(view, WebhookViewSet):
        pk = WebhookSubscription.objects.create(url="http://127.0.0.1:9/hook", events=["lead.mql"]).pk
    else:
        pk = LeadFactory(stage=Stage.MQL, owner=rep, team=team).pk
    return reverse(name, kwargs={"pk": pk})


@pytest.mark.parametrize(("name", "action"), CASES, ids=[f"{n} {a}" for n, a in CASES])
def test_each_role_is_allowed_or_refused_as_the_table_says(name, action, marketer, rep, manager, executive, team):
    callers = {
        M: client_for(marketer),
        REP: client_for(rep),
        SM: client_for(manager),
        AE: client_for(executive),
        ANON: APIClient(),
        "superuser": client_for(make_user("root", is_superuser=True, is_staff=True)),
    }
    allowed = EXPECTED.get(name, {}).get(action, set()) | {"superuser"}
    method = action.split()[0].lower()
    for caller, client in callers.items():
        url = _url(name, rep=rep, team=team, marketer=marketer)
        response = getattr(client, method)(url, {}, format="json") if method != "get" else client.get(url)
        if caller in allowed:
            assert response.status_code not in (401, 403), (caller, url, response.content[:300])
        elif caller == ANON:
            assert response.status_code == 401, (caller, url, response.status_code)
        else:
            assert response.status_code == 403, (caller, url, response.status_code)
            assert response.json()["code"] == "permission_denied"
