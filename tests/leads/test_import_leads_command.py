"""`manage.py import_leads FILE`: the historical import from the command line."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.leads.services.test_importer import _csv

pytestmark = pytest.mark.django_db


def test_import_leads_command_prints_summary(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text(_csv([["c-1", "c1@example.com", "", "", "", "", "", "", "", "", "", "", ""]]))
    out = io.StringIO()
    call_command("import_leads", str(path), stdout=out, stderr=io.StringIO())
    assert "created 1" in out.getvalue()
