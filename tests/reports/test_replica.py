"""With DATABASE_REPLICA_URL set, the report selectors read on the `replica` alias."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_report_reads_go_to_the_replica_alias_when_one_is_configured(tmp_path):
    env = dict(os.environ)
    url = f"sqlite:///{tmp_path / 'primary.sqlite3'}"
    env.update(DATABASE_URL=url, DATABASE_REPLICA_URL=url, CELERY_TASK_ALWAYS_EAGER="1")
    env.pop("CELERY_BROKER_URL", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "reports" / "replica_reads.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    for name, seen in outcome.items():
        assert seen["status"] == 200, name
        assert seen["replica_reads"] > 0, name
        assert seen["primary_report_reads"] == [], name
        assert seen["equal"], name
