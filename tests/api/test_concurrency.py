"""Accept is compare-and-set: under contention exactly one caller wins, the rest get 409."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection

from leads.models import Lead, Stage, StageTransition
from tests.api.conftest import client_for
from tests.factories import LeadFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_eight_concurrent_accepts_give_one_200_and_seven_409_on_postgres(transactional_db, team, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep, team=team)
    clients = [client_for(rep) for _ in range(8)]
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def accept(client) -> None:
        barrier.wait()
        try:
            statuses.append(client.post(f"/api/v1/leads/{lead.pk}/accept/", {}, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [409] * 7
    assert Lead.objects.get(pk=lead.pk).stage == Stage.SAL
    assert StageTransition.objects.filter(lead=lead, to_stage=Stage.SAL).count() == 1


def test_eight_concurrent_accepts_give_one_200_and_seven_409_on_sqlite(tmp_path):
    env = dict(os.environ)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'concurrent.sqlite3'}"
    env.pop("CELERY_BROKER_URL", None)
    env["CELERY_TASK_ALWAYS_EAGER"] = "1"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "api" / "concurrent_accepts.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["statuses"] == [200] + [409] * 7, result.stderr[-3000:]
    assert outcome["sal_transitions"] == 1
