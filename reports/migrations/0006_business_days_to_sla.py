"""The business-day tables move to the sla app, with the calendars they are built from: the
reports app forgets the models here, `sla.0004_business_days_from_reports` adopts them. Both
change Django's state only; the tables (`reports_businessday`, `reports_businessutcday`), their
rows, indexes and constraints stay as they are."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("reports", "0005_rollup_span_bins"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="BusinessDay"),
                migrations.DeleteModel(name="BusinessUtcDay"),
            ],
            database_operations=[],
        ),
    ]
