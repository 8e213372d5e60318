import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

app = Celery("leadflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def task(name: str) -> Task:
    """A registered task by its name. Services enqueue follow-up work (a webhook delivery, a
    rescore) through this instead of importing the task modules, which sit above them and import
    them in turn; each app's `ready()` imports its tasks, so every process knows them."""
    return app.tasks[name]
