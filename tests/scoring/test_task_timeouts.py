"""Issue 22, point 7: the Redis visibility timeout is fitted to the longest task. With late
acks an unacknowledged task is handed to another worker once the timeout passes, so every
task's hard time limit must end before it (or a task still running would run twice); the rescore
outbox, not the timeout, redoes a killed rescore, within two leases."""

from __future__ import annotations

import importlib

import pytest
from django.conf import settings

from leadflow.celery import app


def _project_tasks():
    app.loader.import_default_modules()
    return [task for name, task in app.tasks.items() if not name.startswith("celery.")]


def _hard_limit(task) -> float:
    return task.time_limit or app.conf.task_time_limit


def test_every_task_has_a_hard_time_limit_shorter_than_the_visibility_timeout():
    tasks = _project_tasks()
    assert tasks
    for task in tasks:
        assert _hard_limit(task), f"{task.name} has no hard time limit"
        assert _hard_limit(task) < settings.REDIS_VISIBILITY_TIMEOUT, task.name
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        assert soft < _hard_limit(task), f"{task.name}: the soft limit must come first"


def test_the_visibility_timeout_is_fitted_to_the_longest_task_not_an_hour():
    longest = max(_hard_limit(task) for task in _project_tasks())
    assert longest == settings.LONG_TASK_TIME_LIMIT
    assert longest < settings.REDIS_VISIBILITY_TIMEOUT <= longest + 600


def test_the_redis_broker_is_given_that_visibility_timeout(monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    from leadflow import settings as settings_module

    try:
        reloaded = importlib.reload(settings_module)
        assert reloaded.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] == reloaded.REDIS_VISIBILITY_TIMEOUT
    finally:
        monkeypatch.undo()
        importlib.reload(settings_module)


@pytest.mark.parametrize("name", ["scoring.tasks.run_rescore_request", "scoring.tasks.rescore_all"])
def test_whole_table_rescores_get_the_long_limit(name):
    _project_tasks()
    assert app.tasks[name].time_limit == settings.LONG_TASK_TIME_LIMIT


def test_beat_looks_for_lapsed_rescores_every_lease():
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "scoring.tasks.redo_rescore_outbox")
    assert entry["schedule"] == settings.RESCORE_CLAIM_SECONDS
