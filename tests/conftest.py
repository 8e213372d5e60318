"""Shared fixtures: role users, a team, and a real Celery worker for end-to-end tests.

By default Celery runs tasks in-process (eager). Tests marked ``e2e`` need the broker to be
Redis and the database PostgreSQL (the worker is a separate process and must see committed
rows); otherwise they are skipped with the reason. ``.ci/run`` runs them.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from leadflow.catalogues import compile_catalogues
from leadflow.celery import app as celery_app
from tests.factories import TeamFactory, add_rep, make_user

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    broker = settings.CELERY_BROKER_URL
    is_pg = settings.IS_POSTGRES
    skip_e2e = pytest.mark.skip(reason="e2e: needs CELERY_BROKER_URL=redis://... and DATABASE_URL=postgres://...")
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL=postgres://...)")
    for item in items:
        if "e2e" in item.keywords and not (broker.startswith("redis://") and is_pg):
            item.add_marker(skip_e2e)
        if "postgres" in item.keywords and not is_pg:
            item.add_marker(skip_pg)


@pytest.fixture(autouse=True)
def _eager_celery(request):
    """Tasks run in-process unless the test talks to a real worker."""
    eager = "e2e" not in request.keywords
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counts live in the cache and ids repeat between tests: each test starts at zero."""
    from django.core.cache import cache

    cache.clear()
    yield


def _uses_transactional_db(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return (
        "transactional_db" in request.fixturenames
        or "live_server" in request.fixturenames
        or bool(marker and marker.kwargs.get("transaction"))
    )


@pytest.fixture(autouse=True)
def _roles_after_flush(request):
    """Put back the role groups (with their permissions) that the data migration made.

    Transactional tests flush every table when they end, the migration's rows included, so any
    later transactional test would find no `marketing` / `sales_rep` / `sales_manager` group.
    (Serialized rollback cannot help the live-server tests: under Playwright's event loop the
    test sees another connection object than the one the database was serialized on.)
    """
    if not _uses_transactional_db(request):
        yield
        return
    request.getfixturevalue("transactional_db")
    from django.contrib.auth.models import Group, Permission

    roles = importlib.import_module("leads.migrations.0002_roles").ROLE_PERMISSIONS
    for role, by_app in roles.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, by_model in by_app.items():
            for model, actions in by_model.items():
                codenames = [f"{action}_{model}" for action in actions.split()]
                group.permissions.add(
                    *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
                )
    executive, _ = Group.objects.get_or_create(name="account_executive")
    ae_permissions = importlib.import_module("leads.migrations.0015_day_ae_role_search").AE_PERMISSIONS
    executive.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="leads",
            codename__in=[f"{a}_{m}" for m, actions in ae_permissions.items() for a in actions.split()],
        )
    )
    yield


@pytest.fixture
def marketer(db):
    return make_user("marketer", "marketing", is_staff=True)


@pytest.fixture
def manager(db):
    return make_user("manager", "sales_manager", is_staff=True)


@pytest.fixture
def rep(db):
    return make_user("rep1", "sales_rep")


@pytest.fixture
def rep2(db):
    return make_user("rep2", "sales_rep")


@pytest.fixture
def executive(db):
    return make_user("ae1", "account_executive")


@pytest.fixture
def team(db, rep, rep2, manager):
    team = TeamFactory(name="North America", territories=["US", "CA"], is_fallback=True, manager=manager)
    add_rep(team, rep)
    add_rep(team, rep2)
    return team


def _worker_env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env["CELERY_TASK_ALWAYS_EAGER"] = "0"
    env.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
    return env


def start_worker(
    *, beat: bool = False, extra_env: dict[str, str] | None = None, queues: str = "default,bulk"
) -> subprocess.Popen:
    """Start `celery worker` (optionally with embedded beat) against the test database,
    consuming both queues unless told otherwise."""
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "leadflow",
        "worker",
        "--queues",
        queues,
        "--loglevel=INFO",
        "--pool=solo",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"e2e-{os.getpid()}-{time.monotonic_ns()}@%h",
    ]
    if beat:
        cmd += [
            "--beat",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--schedule",
            str(ROOT / "var" / f"beat-e2e-{os.getpid()}"),
        ]
    env = _worker_env()
    env.update(extra_env or {})
    log = open(ROOT / "var" / f"e2e-worker-{os.getpid()}.log", "ab")  # noqa: SIM115 - the worker's own
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    """Poll `predicate` (reading committed data) until it is truthy; fail with `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real Celery worker process on the Redis broker, sharing the test database."""
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    connection.close()  # the worker must see committed rows; ours reconnects on demand
    proc = start_worker()
    yield proc
    stop_worker(proc)


def pytest_configure(config):
    # `make test` compiles the translations; a bare `python -m pytest` gets them too (issue 24).
    compile_catalogues(only_stale=True)
    # The default PBKDF2 hasher spends ~0.3 s per user; tests create several users each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    (ROOT / "var" / "staticfiles").mkdir(parents=True, exist_ok=True)
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3" and not database["TEST"].get("NAME"):
        # A file, as in the embedded default, not Django's in-memory test database: with that,
        # the live server's threads share the test's one connection, and the dashboard's six
        # parallel report requests on it can deadlock. With a file each thread has its own
        # connection, and WAL + IMMEDIATE transactions serialise writers as in production.
        database["TEST"]["NAME"] = str(ROOT / "var" / f"test-{os.getpid()}.sqlite3")
