"""Report reads on a second database alias (`replica`), as with DATABASE_REPLICA_URL set.

`tests/reports/test_replica.py` runs this in a subprocess with DATABASE_URL and
DATABASE_REPLICA_URL naming the same fresh SQLite file (a replica that is never behind), since
the settings add the alias and the router only when the variable is set. Prints, as JSON,
which alias each report's queries ran on and whether the numbers are the primary's.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

import django

django.setup()


from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from leads.lifecycle import SYSTEM, promote_to_mql  # noqa: E402
from reports import readmodel, selectors  # noqa: E402
from tests.api.conftest import client_for  # noqa: E402
from tests.factories import LeadFactory, make_user  # noqa: E402

REPORT_TABLES = ("leads_stagetransition", "reports_rollupday", "reports_readmodelstate", "leads_lead")


def main() -> None:
    call_command("migrate", verbosity=0)
    manager = make_user("manager", "sales_manager")
    for n in range(3):
        promote_to_mql(LeadFactory(email=f"r{n}@example.com"), actor=SYSTEM)
    readmodel.catch_up()
    client = client_for(manager)
    today = timezone.localdate().isoformat()
    outcome: dict[str, dict] = {}
    for name in ("funnel", "efficiency", "velocity", "commitment"):
        with (
            CaptureQueriesContext(connections["default"]) as primary,
            CaptureQueriesContext(connections["replica"]) as replica,
        ):
            response = client.get(f"/api/v1/reports/{name}/", {"from": today, "to": today})
        body = response.json()
        body.pop("as_of", None), body.pop("lag_seconds", None)
        expected = selectors.REPORTS[name](
            date_from=timezone.localdate(), date_to=timezone.localdate(), filters=selectors.ReportFilters()
        )
        outcome[name] = {
            "status": response.status_code,
            "replica_reads": sum(any(t in q["sql"] for t in REPORT_TABLES) for q in replica.captured_queries),
            "primary_report_reads": [
                q["sql"][:120] for q in primary.captured_queries if any(t in q["sql"] for t in REPORT_TABLES[:3])
            ],
            "equal": body == expected,
        }
    print(json.dumps(outcome))  # noqa: T201 - the result, for the test that runs this script


if __name__ == "__main__":
    main()
