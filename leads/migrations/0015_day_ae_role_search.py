"""Issue 25: the account executive role, a closed deal's amount, and fast lead search.

- `account_executive` (SPEC section 1): a Django group reading leads and logging touches in the
  admin like a rep; which leads (their SQLs) and which moves (close) is leads.permissions'.
- `StageTransition.amount`: what a won or lost deal was worth.
- Search (`leads.filters.search_q`, ILIKE '%word%' over name, company, e-mail and external id):
  on PostgreSQL one pg_trgm GIN index per column, so a word is a few bitmap index scans instead
  of a read of every lead. The indexed expression is the one Django's `icontains` compares,
  `UPPER(column::text)`: an index on the bare column would never be used. `TrigramExtension` and the index statements do nothing on SQLite.
"""

from django.contrib.auth.management import create_permissions
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

AE_PERMISSIONS = {"lead": "view", "event": "view", "stagetransition": "view", "touch": "add view"}
SEARCH_COLUMNS = ("first_name", "last_name", "company", "email", "external_id")


def create_role(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="account_executive")
    codenames = [f"{action}_{model}" for model, actions in AE_PERMISSIONS.items() for action in actions.split()]
    group.permissions.add(*Permission.objects.filter(content_type__app_label="leads", codename__in=codenames))


def remove_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="account_executive").delete()


def create_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCH_COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS lead_{column}_trgm_idx ON leads_lead "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCH_COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS lead_{column}_trgm_idx")


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0014_user_language"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="stagetransition",
            name="amount",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=16, null=True),
        ),
        migrations.RunPython(create_role, remove_role),
        TrigramExtension(),
        migrations.RunPython(create_search_indexes, drop_search_indexes),
    ]
