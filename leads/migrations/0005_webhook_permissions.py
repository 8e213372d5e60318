"""Sales managers manage webhooks in the admin and see the delivery log."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = {
    "sales_manager": {"webhooksubscription": "add change delete view", "webhookdelivery": "view",
                      "webhookattempt": "view"},
}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("leads")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, by_model in PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        codenames = [f"{a}_{m}" for m, actions in by_model.items() for a in actions.split()]
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="leads", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, by_model in PERMISSIONS.items():
        codenames = [f"{a}_{m}" for m, actions in by_model.items() for a in actions.split()]
        for group in Group.objects.filter(name=role):
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="leads", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [("leads", "0004_webhooks_idempotency")]
    operations = [migrations.RunPython(grant, revoke)]
