"""The business-day tables, built from the calendars, now belong to the sla app. The tables were
created by the reports app's migrations 0001 and 0003 and keep their names (`db_table`): this
migration only tells Django's state about them, after `reports.0006_business_days_to_sla` has
made the reports app forget them. No SQL runs, on a fresh database or an existing one."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("sla", "0003_breach_policy_unindexed"),
        ("reports", "0006_business_days_to_sla"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="BusinessDay",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("signature", models.CharField(max_length=64)),
                        ("day", models.DateField()),
                        ("start_epoch", models.FloatField()),
                        ("end_epoch", models.FloatField()),
                        ("seconds_before", models.FloatField()),
                        ("calendar", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="sla.businesscalendar")),
                    ],
                    options={
                        "db_table": "reports_businessday",
                        "indexes": [models.Index(fields=["calendar", "start_epoch"], name="business_day_start_idx")],
                        "constraints": [models.UniqueConstraint(fields=("calendar", "day"), name="unique_business_day")],
                    },
                ),
                migrations.CreateModel(
                    name="BusinessUtcDay",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("signature", models.CharField(max_length=64)),
                        ("number", models.IntegerField()),
                        ("anchor_start", models.FloatField(null=True)),
                        ("anchor_end", models.FloatField(null=True)),
                        ("anchor_before", models.FloatField(null=True)),
                        ("next_start", models.FloatField(null=True)),
                        ("next_end", models.FloatField(null=True)),
                        ("next_before", models.FloatField(null=True)),
                        ("later_start", models.FloatField(null=True)),
                        ("later_end", models.FloatField(null=True)),
                        ("later_before", models.FloatField(null=True)),
                        ("calendar", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="sla.businesscalendar")),
                    ],
                    options={
                        "db_table": "reports_businessutcday",
                        "indexes": [models.Index(fields=["calendar", "signature"], name="business_utc_day_sig_idx")],
                        "constraints": [models.UniqueConstraint(fields=("calendar", "number"), name="unique_business_utc_day")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
