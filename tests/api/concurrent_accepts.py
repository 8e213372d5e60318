"""Eight concurrent accepts against a file-backed SQLite database, as the embedded default runs.

pytest's SQLite test database is in memory with a shared cache, where concurrent writers fail
with "table is locked" instead of waiting on the busy timeout; the real deployment uses a file.
`tests/api/test_concurrency.py` runs this in a subprocess: DATABASE_URL must name a fresh file.
Prints the HTTP statuses and the number of SAL transitions as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from leads.models import Stage, StageTransition  # noqa: E402
from tests.api.conftest import client_for  # noqa: E402
from tests.factories import LeadFactory, TeamFactory, add_rep, make_user  # noqa: E402


def main() -> None:
    call_command("migrate", verbosity=0)
    rep = make_user("rep1", "sales_rep")
    team = TeamFactory(name="T", territories=["US"], is_fallback=True)
    add_rep(team, rep)
    lead = LeadFactory(stage=Stage.MQL, owner=rep, team=team)
    clients: list[APIClient] = [client_for(rep) for _ in range(8)]
    connection.close()
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def accept(client: APIClient) -> None:
        barrier.wait()
        try:
            statuses.append(client.post(f"/api/v1/leads/{lead.pk}/accept/", {}, format="json").status_code)
        except Exception as exc:  # noqa: BLE001 - reported as a 500 for the test to see
            statuses.append(500)
            print(repr(exc), file=sys.stderr)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sal = StageTransition.objects.filter(lead=lead, to_stage=Stage.SAL).count()
    print(json.dumps({"statuses": sorted(statuses), "sal_transitions": sal}))


if __name__ == "__main__":
    main()
