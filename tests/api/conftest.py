from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from leads.models import Stage
from leads.tokens import issue_token
from tests.factories import LeadFactory


def client_for(user) -> APIClient:
    client = APIClient()
    _token, key = issue_token(user=user, name="test")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def as_marketer(marketer):
    return client_for(marketer)


@pytest.fixture
def as_manager(manager):
    return client_for(manager)


@pytest.fixture
def as_rep(rep):
    return client_for(rep)


@pytest.fixture
def as_rep2(rep2):
    return client_for(rep2)


@pytest.fixture
def mql_lead(team, rep):
    return LeadFactory(stage=Stage.MQL, owner=rep, team=team, email="mql@acme.example")
