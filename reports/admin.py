"""Marketing's quarterly commitment, set by sales managers in the admin."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import QuarterlyTarget


@admin.register(QuarterlyTarget)
class QuarterlyTargetAdmin(admin.ModelAdmin):
    list_display = ("year", "quarter", "team_or_all", "qualified_leads")
    list_filter = ("year", "quarter", "team")
    list_select_related = ("team",)
    ordering = ("-year", "-quarter", "team__name")
    fieldsets = (
        (
            None,
            {
                "fields": ("year", "quarter", "team", "qualified_leads"),
                "description": _(
                    "The qualified leads (MQLs) marketing promises sales for a quarter. "
                    "The commitment report spreads it evenly over the quarter's days and compares it "
                    "with what is delivered each week."
                ),
            },
        ),
    )

    @admin.display(description=_("Team"), ordering="team__name")
    def team_or_all(self, obj: QuarterlyTarget) -> str:
        return obj.team.name if obj.team is not None else str(_("All teams"))
