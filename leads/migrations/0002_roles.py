"""The three roles of SPEC section 1 as Django groups, with the model permissions they use in
the admin. What a role may do to a lead's *stage* is decided by leads.permissions, not here."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "marketing": {
        "leads": {"lead": "add change view", "event": "add view", "stagetransition": "view",
                  "touch": "view", "team": "view", "teammembership": "view"},
        "scoring": {"qualifiedleaddefinition": "add change view", "fitrule": "add change delete view",
                    "behaviorrule": "add change delete view", "knockout": "add change delete view"},
        "sla": {"businesscalendar": "view", "slapolicy": "view", "slabreach": "view"},
    },
    "sales_rep": {
        "leads": {"lead": "view", "event": "view", "stagetransition": "view", "touch": "add view"},
    },
    "sales_manager": {
        "leads": {"lead": "add change view", "event": "add view", "stagetransition": "view",
                  "touch": "add view", "team": "add change view",
                  "teammembership": "add change delete view"},
        "scoring": {"qualifiedleaddefinition": "view", "fitrule": "view", "behaviorrule": "view",
                    "knockout": "view"},
        "sla": {"businesscalendar": "add change view", "slapolicy": "add change view",
                "slabreach": "view"},
    },
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, by_app in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, by_model in by_app.items():
            for model, actions in by_model.items():
                codenames = [f"{action}_{model}" for action in actions.split()]
                group.permissions.add(
                    *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
                )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0001_initial"),
        ("scoring", "0001_initial"),
        ("sla", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
