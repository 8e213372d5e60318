import os

from celery import Celery, Task
from django.core.cache import cache
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

app = Celery("leadflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def task(name: str) -> Task:
    """A registered task by its name. Services enqueue follow-up work (a webhook delivery, a
    rescore) through this instead of importing the task modules, which sit above them and import
    them in turn; each app's `ready()` imports its tasks, so every process knows them."""
    return app.tasks[name]


def _debounce_key(name: str) -> str:
    return f"celery:queued:{name}"


def enqueue_on_commit(name: str, *, debounce_seconds: float = 5.0) -> None:
    """Enqueue the task `name` (no arguments) when the current transaction commits, once per
    burst: while one is queued and has not started, later commits add none. The task calls
    `release_debounce(name)` first thing, so a commit after it started queues the next run."""

    def send() -> None:
        if cache.add(_debounce_key(name), 1, timeout=debounce_seconds):
            task(name).delay()

    transaction.on_commit(send)


def release_debounce(name: str) -> None:
    cache.delete(_debounce_key(name))
