from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "sla"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the sweep's signals to the outbox)
