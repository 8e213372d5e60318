from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the tasks: the lifecycle enqueues the read model's catch-up by name.
        from . import tasks  # noqa: F401
