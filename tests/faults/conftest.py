"""Fixtures of the fault suite: a gunicorn web server and Celery workers on the private servers
that `tests/faults/run.py` started, an HTTP client that counts answers, and the report rows.

The tests are marked `faults` and skipped unless run.py started the servers (FAULTS_DIR set):
they stop Redis, kill workers and restart PostgreSQL, which only a private server may suffer."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from leadflow.celery import app as celery_app
from tests.conftest import ROOT, _worker_env, wait_for
from tests.faults.services import free_port, from_environment, port_open

FAULTS_READY = bool(os.environ.get("FAULTS_DIR"))


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: stops and restarts real services (tests/faults/run.py)")


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="faults: run through tests/faults/run.py (private PostgreSQL and Redis)")
    for item in items:
        if "faults" in item.keywords and not FAULTS_READY:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _real_broker(request):
    """Fault tests queue onto the private Redis, as production does (not in-process)."""
    if "faults" not in request.keywords:
        yield
        return
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def private_services():
    pg, redis = from_environment()
    yield pg, redis
    if not port_open(redis.port):
        redis.start()


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = _worker_env()
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "SECURE_SSL_REDIRECT": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CACHE_URL": os.environ.get("CACHE_URL", ""),
        }
    )
    env.update(extra or {})
    return env


class Process:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.log_path = ROOT / "var" / f"faults-{name}-{os.getpid()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log_text(self) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(self.offset)
            return log.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL to the whole process group: no warm shutdown, no ack, no cleanup."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_web() -> tuple[Process, str]:
    port = free_port(8600)
    cmd = [
        sys.executable, "-m", "gunicorn", "leadflow.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--timeout", "30", "--worker-tmp-dir", str(ROOT / "var"),
        # Not gunicorn's default socket under $HOME, shared with any other gunicorn there.
        "--no-control-socket",
    ]  # fmt: skip
    web = Process("web", cmd, _env())
    wait_for(lambda: port_open(port), timeout=60, what="gunicorn to listen")
    return web, f"http://127.0.0.1:{port}"


def start_worker(*, beat: bool) -> Process:
    cmd = [
        sys.executable, "-m", "celery", "-A", "leadflow", "worker", "--loglevel=INFO", "--pool=solo",
        "--queues", "default,bulk", "--without-heartbeat", "--without-gossip", "--without-mingle",
        "--hostname", f"faults-{os.getpid()}-{time.monotonic_ns()}@%h",
    ]  # fmt: skip
    if beat:
        cmd += ["--beat", "--schedule", str(ROOT / "var" / f"faults-beat-{os.getpid()}-{time.monotonic_ns()}")]
    return Process("worker", cmd, _env())


@pytest.fixture
def processes(transactional_db, private_services):
    """Start web and workers through it; all are stopped when the test ends."""
    started: list[Process] = []

    class Starter:
        def web(self) -> tuple[Process, str]:
            web, url = start_web()
            started.append(web)
            return web, url

        def worker(self, *, beat: bool = False) -> Process:
            worker = start_worker(beat=beat)
            started.append(worker)
            return worker

    connection.close()  # the servers must see committed rows; ours reconnects on demand
    yield Starter()
    for proc in started:
        proc.stop()


class Api:
    """Counts every answer by status; a refused or dropped connection counts as a 5xx (the
    user sees no answer either way)."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.statuses: Counter[int] = Counter()
        self.slowest = 0.0

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        started = time.monotonic()
        try:
            return self._call(method, path, body)
        finally:
            self.slowest = max(self.slowest, time.monotonic() - started)

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Token {self.token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        except (urllib.error.URLError, OSError):
            status, payload = 599, b""
        self.statuses[status] += 1
        try:
            return status, json.loads(payload or b"null")
        except ValueError:
            return status, payload

    @property
    def served(self) -> int:
        return sum(count for status, count in self.statuses.items() if status < 500)

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)


def report(row: dict[str, Any]) -> None:
    """One row of run.py's table."""
    path = os.environ.get("FAULTS_REPORT")
    if path:
        with Path(path).open("a") as out:
            out.write(json.dumps(row) + "\n")


@pytest.fixture
def definition_json():
    from tests.scoring.conftest import SPEC_DEFINITION

    return dict(SPEC_DEFINITION)


__all__ = ["Api", "report", "settings"]
