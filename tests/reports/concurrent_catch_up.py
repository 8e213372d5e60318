"""Imports and API writes while the report read model catches up, against a file-backed SQLite
database as the embedded default runs it (pytest's in-memory shared-cache database fails
concurrent writers at once instead of letting them wait on the busy timeout).

`tests/reports/test_concurrent_catch_up.py` runs this in a subprocess: DATABASE_URL must name a
fresh file. Two writer threads (imports of dated history through POST /api/v1/import/, leads
created through POST /api/v1/leads/) run while a third catches the read model up in a loop (and
each write's own on-commit catch-up runs too, as Celery is eager). Prints the HTTP statuses and
whether the read model's funnel then equals the live one, as JSON.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import threading
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

import django

django.setup()

import datetime as dt  # noqa: E402

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from reports import readmodel, selectors  # noqa: E402
from tests.api.conftest import client_for  # noqa: E402
from tests.factories import make_user  # noqa: E402
from tests.leads.services.test_importer import HEADER  # noqa: E402

ROUNDS = 6
ROWS = 40


def history_csv(round_: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for i in range(ROWS):
        day = dt.date(2025, 1, 1) + dt.timedelta(days=(round_ * ROWS + i) % 300)
        sal = (day + dt.timedelta(days=2)).isoformat() if i % 2 else ""
        writer.writerow(
            [
                f"crm-{round_}-{i}",
                f"h{round_}-{i}@example.com",
                "Acme",
                "US",
                "",
                "",
                day.isoformat(),
                (day + dt.timedelta(days=1)).isoformat(),
                sal,
                "",
                "",
                "",
                "",
            ]
        )
    return out.getvalue()


def main() -> None:
    call_command("migrate", verbosity=0)
    marketer = make_user("marketer", "marketing", is_staff=True)
    importer, writer = client_for(marketer), client_for(marketer)
    readmodel.catch_up()
    connection.close()
    statuses: list[int] = []
    errors: list[str] = []
    writing = threading.Event()
    writing.set()
    barrier = threading.Barrier(3)

    def guarded(work):
        def run() -> None:
            barrier.wait()
            try:
                work()
            except Exception:  # noqa: BLE001 - reported for the test to see
                errors.append(traceback.format_exc())
            finally:
                connection.close()

        return run

    def imports() -> None:
        for round_ in range(ROUNDS):
            body = history_csv(round_)
            statuses.append(importer.generic("POST", "/api/v1/import/", body, content_type="text/csv").status_code)

    def api_writes() -> None:
        for i in range(ROUNDS * 5):
            response = writer.post("/api/v1/leads/", {"email": f"api{i}@example.com", "country": "US"}, format="json")
            statuses.append(response.status_code)

    def catching_up() -> None:
        batches = 0
        while writing.is_set() or batches == 0:
            batches += readmodel.catch_up().batches

    threads = [threading.Thread(target=guarded(imports)), threading.Thread(target=guarded(api_writes))]
    catcher = threading.Thread(target=guarded(catching_up))
    for thread in [*threads, catcher]:
        thread.start()
    for thread in threads:
        thread.join()
    writing.clear()
    catcher.join()
    readmodel.catch_up()
    whole = {"date_from": dt.date(2024, 1, 1), "date_to": dt.date(2027, 1, 1), "filters": selectors.ReportFilters()}
    from_model = selectors.funnel(**whole)
    with override_settings(REPORTS_READ_MODEL=False):
        live = selectors.funnel(**whole)
    print(  # noqa: T201 - the result, for the test that runs this script
        json.dumps(
            {"statuses": sorted(set(statuses)), "writes": len(statuses), "errors": errors, "equal": from_model == live}
        )
    )


if __name__ == "__main__":
    main()
