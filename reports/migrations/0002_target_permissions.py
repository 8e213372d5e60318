"""Managers set marketing's quarterly targets; marketing sees them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "sales_manager": ["add_quarterlytarget", "change_quarterlytarget", "view_quarterlytarget"],
    "marketing": ["view_quarterlytarget"],
}


def grant(apps, schema_editor):
    # Permissions are normally created after migrate; make sure they exist before granting.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="reports", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group = Group.objects.filter(name=name).first()
        if group:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="reports", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0001_targets_business_days"),
        ("leads", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
