"""Shared plumbing of the API benchmarks: a fresh PostgreSQL database, gunicorn, tokens, stats."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG = "postgres://postgres@127.0.0.1:5432"


def env_for(database: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": f"{PG}/{database}",
            "DJANGO_SETTINGS_MODULE": "leadflow.settings",
            "API_THROTTLE_RATE": "100000000/hour",
            "CELERY_BROKER_URL": "filesystem://",
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + "x" * 50,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "WEBHOOKS_ALLOW_PRIVATE": "1",
            "SECURE_SSL_REDIRECT": "0",
        }
    )
    return env


def fresh_database(database: str) -> dict[str, str]:
    """Drop and create `database`, migrate it; returns the environment pointing at it."""
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", database], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    env = env_for(database)
    print(f"migrating {database} ...", flush=True)
    subprocess.run([str(BIN / "python"), "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    return env


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(
    env: dict[str, str], *, workers: int, threads: int = 1, access_log: str | None = None
) -> tuple[subprocess.Popen, str]:
    """gunicorn on a free port. With `access_log`, each request is logged there as
    ``<method> <path> <status> <microseconds>`` (see `server_times`)."""
    port = free_port()
    log_args: list[str] = []
    if access_log:
        log_args = ["--access-logfile", access_log, "--access-logformat", "%(m)s %(U)s %(s)s %(D)s"]
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "leadflow.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "120",
            "--log-level",
            "warning",
            *log_args,
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/v1/schema/", timeout=5)
            return proc, base
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                proc.terminate()
                raise SystemExit("gunicorn did not start") from None
            time.sleep(0.5)


def server_times(access_log: str, *, method: str = "POST") -> list[float]:
    """Seconds gunicorn spent on each `method` request in an access log written by
    `start_gunicorn(access_log=...)`: from reading the request to writing the response, so
    without the time a request waited for a free worker."""
    times = []
    with open(access_log) as lines:
        for line in lines:
            parts = line.split()
            if len(parts) == 4 and parts[0] == method:
                times.append(int(parts[3]) / 1e6)
    return times


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def table(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print("-" * (width + 24))
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("-" * (width + 24), flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
