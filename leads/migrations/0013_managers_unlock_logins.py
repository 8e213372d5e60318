"""Sales managers may see login lock-outs in the admin and lift them (delete the attempt), the
unlock path of issue 22, without being superusers."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MANAGER_AXES_PERMISSIONS = ["view_accessattempt", "delete_accessattempt", "view_accessfailurelog"]


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="sales_manager")
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="axes", codename__in=MANAGER_AXES_PERMISSIONS)
    )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name="sales_manager"):
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="axes", codename__in=MANAGER_AXES_PERMISSIONS)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0012_event_id_unique_per_lead"),
        ("axes", "0010_accessattemptexpiration"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
