"""SlaBreach.lead without its own index: `unique_breach` (lead, clock, due_at) starts with it.
One index fewer to write per breach; a big sweep writes a quarter of a million."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("sla", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="slabreach",
            name="lead",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="sla_breaches",
                to="leads.lead",
            ),
        ),
    ]
