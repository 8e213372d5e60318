"""Fewer indexes to write when the SLA sweep recycles a lead (a new entry in every index of
`leads_lead`, as the stage, owner and deadline change) and appends its audit row.

- `leads_lead.owner_id`: its own index goes; `lead_inbox_idx` (owner, stage, sla_due_at) starts
  with it and serves the same lookups.
- `lead_team_unassigned_idx`: only MQLs. Every query of it asks for unassigned MQLs; recycled
  leads, ownerless too, no longer get an entry.
- `leads_stagetransition.lead_id`: its own index goes; `transition_lead_at_idx` starts with it.
- PostgreSQL only: the `varchar_pattern_ops` copies Django adds for the unique `email` and
  `external_id`. They serve only `LIKE 'prefix%'`, which nothing asks (lookups are exact; the
  admin's search is a case-insensitive `%...%`, which no B-tree serves). Django does not track
  them in the migration state; an AlterField of either column would re-create its copy.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

LIKE_INDEXES = {
    "leads_lead_email_93d5b817_like": "email",
    "leads_lead_external_id_c72287bc_like": "external_id",
}


def drop_like_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in LIKE_INDEXES:
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def create_like_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, column in LIKE_INDEXES.items():
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "leads_lead" ("{column}" varchar_pattern_ops)'
            )


class Migration(migrations.Migration):

    dependencies = [
        ("leads", "0007_event_indexes_lead_fillfactor"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="lead",
            name="lead_team_unassigned_idx",
        ),
        migrations.AlterField(
            model_name="lead",
            name="owner",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="owned_leads",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="stagetransition",
            name="lead",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="transitions",
                to="leads.lead",
            ),
        ),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                condition=models.Q(("owner__isnull", True), ("stage", "mql")),
                fields=["team", "stage", "sla_due_at"],
                name="lead_team_unassigned_idx",
            ),
        ),
        migrations.RunPython(drop_like_indexes, create_like_indexes, elidable=False),
    ]
