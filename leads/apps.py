from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the webhook outbox's signal receivers and register the tasks.
        # The login receiver reads the user's language and time zone into the session.
        from . import language, tasks, webhooks  # noqa: F401
