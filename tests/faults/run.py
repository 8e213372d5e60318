"""The fault suite (issue 22): start a private PostgreSQL cluster and a private Redis, run
`pytest -m faults tests/faults` against them (the tests stop Redis, kill the worker and restart
PostgreSQL), print the report table, and remove the servers. `.ci/run` runs it after the
PostgreSQL suite; by hand: `.venv/bin/python tests/faults/run.py [pytest options]`.

The servers are the suite's own (ports 5440+ and 6390+, data under var/faults), never the
machine's shared ones, so stopping them harms nobody."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.faults.services import PrivatePostgres, PrivateRedis, free_port  # noqa: E402

COLUMNS = (
    ("scenario", "scenario"),
    ("requests", "requests served"),
    ("errors_5xx", "5xx"),
    ("errors_5xx_after_recovery", "5xx after recovery"),
    ("lost_transitions", "lost transitions"),
    ("duplicated_transitions", "duplicated transitions"),
    ("webhooks_after_recovery", "webhooks delivered after recovery"),
    ("slowest_s", "slowest answer (s)"),
    ("recovered_in_s", "recovered in (s)"),
)


def _base_dir() -> Path:
    """var/faults when the postgres user can reach it (it runs the cluster), else a temp dir."""
    base = ROOT / "var" / "faults"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    if os.geteuid() == 0:
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(base)], check=False)
        if probe.returncode != 0:
            # /tmp, not $TMPDIR: CI points that into the tree too.
            base = Path(tempfile.mkdtemp(prefix="leadflow-faults-", dir="/tmp"))
            base.chmod(0o755)
    return base


def print_report(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    table = [[title for _, title in COLUMNS]]
    table += [["-" if row.get(key) is None else str(row[key]) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["", "Fault suite report"]
    for i, r in enumerate(table):
        lines.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.write("\n".join(lines) + "\n")


def main() -> int:
    base = _base_dir()
    pg = PrivatePostgres(base, free_port(5440))
    redis = PrivateRedis(base, free_port(6390))
    report = base / "report.jsonl"
    try:
        pg.init()
        pg.start()
        redis.start()
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": f"{pg.url}/leadflow_faults",
                "CELERY_BROKER_URL": f"{redis.url}/0",
                "CACHE_URL": f"{redis.url}/1",
                # A short lease, so a killed rescore is redone in seconds rather than a minute.
                "RESCORE_CLAIM_SECONDS": "3",
                "WEBHOOKS_ALLOW_PRIVATE": "1",
                "FAULTS_DIR": str(base),
                "FAULTS_PG_PORT": str(pg.port),
                "FAULTS_REDIS_PORT": str(redis.port),
                "FAULTS_REPORT": str(report),
            }
        )
        cmd = [sys.executable, "-m", "pytest", "tests/faults", "-m", "faults", "-p", "no:cacheprovider", "-q", "-rA"]
        cmd += sys.argv[1:]
        result = subprocess.run(cmd, cwd=ROOT, env=env, check=False, stdin=subprocess.DEVNULL)
        print_report(report)
        return result.returncode
    finally:
        redis.stop()
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
