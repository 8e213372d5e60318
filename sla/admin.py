"""Admin screens for SLAs: calendars, policies (what a breach does), and the breaches list.

The sweep's periodic task itself is listed by django-celery-beat's own admin (Periodic tasks).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from . import services
from .models import POLICY_TERM_FIELDS, BusinessCalendar, SlaBreach, SlaPolicy, SlaPolicyChange


class SlaPolicyInline(admin.TabularInline):
    model = SlaPolicy
    extra = 0
    fields = ("name", "clock", "duration_hours", "business_time", "breach_action", "active")
    show_change_link = True


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ("name", "timezone", "working_days_display", "work_start", "work_end", "holiday_count")
    search_fields = ("name", "timezone")
    inlines = [SlaPolicyInline]

    @admin.display(description=_("Working days"))
    def working_days_display(self, obj: BusinessCalendar) -> str:
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        return ", ".join(names[int(day)] for day in sorted(obj.working_days))

    @admin.display(description=_("Holidays"))
    def holiday_count(self, obj: BusinessCalendar) -> int:
        return len(obj.holidays or [])


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "stage",
        "clock",
        "duration_display",
        "warning_share",
        "breach_action",
        "escalate_to_manager",
        "active",
    )
    list_filter = ("stage", "breach_action", "active", "calendar")
    list_editable = ("active",)
    search_fields = ("name",)
    readonly_fields = ("version",)
    fieldsets = (
        (None, {"fields": ("name", "stage", "clock", "active", "version")}),
        (_("Clock"), {"fields": ("calendar", "duration_hours", "business_time", "warning_share")}),
        (_("On breach"), {"fields": ("breach_action", "escalate_to_manager")}),
        (
            _("Minimum touches and qualification"),
            {
                "fields": ("min_calls", "min_emails", "window_days", "bant_required"),
                "description": _("Used by the minimum-touches and qualify clocks only."),
            },
        ),
    )

    @admin.display(description=_("Duration"))
    def duration_display(self, obj: SlaPolicy) -> str:
        value = formats.number_format(obj.duration_hours, use_l10n=True)
        if obj.business_time:
            return _("%(value)s business hours") % {"value": value}
        return _("%(value)s hours") % {"value": value}

    def save_model(self, request: HttpRequest, obj: SlaPolicy, form: ModelForm, change: bool) -> None:
        """The policies in force are the SLA both sides signed: an edit becomes a pending change
        that applies once marketing and a sales manager have signed it, and a new policy is
        saved switched off, with its switching on as the pending change."""
        terms: dict[str, Any] = {name: getattr(obj, name) for name in POLICY_TERM_FIELDS}
        if not change:
            obj.active = False
            super().save_model(request, obj, form, change)
        current = SlaPolicy.objects.get(pk=obj.pk)
        proposal = services.propose_policy_change(policy=current, terms=terms, by=request.user)
        if proposal is None:
            return
        self.message_user(
            request,
            _(
                "Proposed as SLA change %(id)s: the policy in force is unchanged until marketing and a "
                "sales manager both sign it (SLA policy changes)."
            )
            % {"id": proposal.pk},
            messages.WARNING,
        )


@admin.register(SlaPolicyChange)
class SlaPolicyChangeAdmin(admin.ModelAdmin):
    """Proposed SLA changes, read-only: each side signs with the action; the second signature
    applies the terms and raises the policy's version."""

    list_display = (
        "id",
        "policy",
        "state",
        "proposed_by",
        "proposed_at",
        "marketing_signed_by",
        "sales_signed_by",
        "applied_version",
    )
    list_filter = ("state", "policy")
    actions = ["sign"]
    readonly_fields = (
        "policy",
        "terms",
        "state",
        "proposed_by",
        "proposed_at",
        "marketing_signed_by",
        "marketing_signed_at",
        "sales_signed_by",
        "sales_signed_at",
        "applied_at",
        "applied_version",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SlaPolicyChange | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SlaPolicyChange | None = None) -> bool:
        return False

    @admin.action(description=_("Sign (my side: marketing or sales); applies once both signed"))
    def sign(self, request: HttpRequest, queryset: QuerySet[SlaPolicyChange]) -> None:
        for change in queryset:
            try:
                signed = services.sign_policy_change(change, by=request.user)
            except services.PolicyChangeError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            if signed.applied_version is not None:
                self.message_user(
                    request, _("Change %(id)s applied: version %(v)s.") % {"id": signed.pk, "v": signed.applied_version}
                )
            else:
                self.message_user(request, _("Change %(id)s signed; waiting for the other side.") % {"id": signed.pk})


@admin.register(SlaBreach)
class SlaBreachAdmin(admin.ModelAdmin):
    """Read-only: breaches are written by the sweep and are part of the lead's history."""

    list_display = ("detected_at", "lead_link", "clock", "stage", "owner", "due_at", "action", "policy_version")
    list_filter = ("clock", "action", "stage", "detected_at")
    search_fields = ("lead__email", "lead__company", "owner__username")
    date_hierarchy = "detected_at"
    list_select_related = ("lead", "owner")
    list_per_page = 100
    show_full_result_count = False  # a count over every breach is slow and rarely wanted

    @admin.display(description=_("Lead"), ordering="lead__email")
    def lead_link(self, obj: SlaBreach) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:leads_lead_change", args=[obj.lead_id]), obj.lead)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SlaBreach | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SlaBreach | None = None) -> bool:
        return False
