"""Marketing's commitment is part of the agreement (SPEC section 1: quarterly targets, marketing
yes): marketing sets the quarterly targets in the admin as managers already do. The targets live
in the reports app; the grant is here, with the agreement, so reports keeps its own migrations."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CODENAMES = ["add_quarterlytarget", "change_quarterlytarget", "view_quarterlytarget"]


def grant(apps, schema_editor):
    app_config = apps.get_app_config("reports")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="reports", codename__in=CODENAMES)
    for group in Group.objects.filter(name="marketing"):
        group.permissions.add(*perms)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="reports", codename__in=CODENAMES[:2])
    for group in Group.objects.filter(name="marketing"):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0003_quarterly_reviews_and_reminders"),
        ("reports", "0002_target_permissions"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
