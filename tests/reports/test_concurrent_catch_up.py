"""No 5xx while the read model catches up: imports and API writes on the embedded SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_imports_and_api_writes_while_the_read_model_catches_up_return_no_5xx_on_sqlite(tmp_path):
    env = dict(os.environ)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'catch_up.sqlite3'}"
    env.pop("CELERY_BROKER_URL", None)
    env["CELERY_TASK_ALWAYS_EAGER"] = "1"
    env["REPORTS_CATCH_UP_BATCH"] = "50"  # many short batches between the writers' transactions
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "reports" / "concurrent_catch_up.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["errors"] == [], outcome["errors"]
    assert outcome["writes"] == 6 + 30
    assert all(status < 500 for status in outcome["statuses"]), outcome["statuses"]
    assert set(outcome["statuses"]) <= {200, 201}, outcome["statuses"]
    # And once caught up, the read model says what the history says.
    assert outcome["equal"]
