"""The inbox index holds owned leads only.

Most leads have no owner (never MQL, or recycled by the SLA sweep) and every query of the index
names an owner (`owner_id = X` implies the condition), so those rows were entries nobody read,
written for each new lead and each lead the sweep recycles (a non-HOT update adds an entry to
every index of the table whose condition the new row meets).
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0008_sweep_write_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='lead',
            name='lead_inbox_idx',
        ),
        migrations.AddIndex(
            model_name='lead',
            index=models.Index(condition=models.Q(('owner__isnull', False)), fields=['owner', 'stage', 'sla_due_at'], name='lead_inbox_idx'),
        ),
    ]
