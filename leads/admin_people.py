"""Admin actions for privacy requests (issue 21): export a person's data as JSON, erase a person
(after a confirmation page), and the people audit trail, view-only. Marketing and sales
managers only (`LeadAdmin.has_people_permission`)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .lifecycle import Actor
from .models import Lead, LeadAuditEntry
from .services.privacy import erase_person, export_person

MAX_EXPORT = 100
# Shown read-only on the lead: merges and consent change through their services (audited).
PEOPLE_FIELDSET = gettext_lazy("Duplicates, consent and privacy")
PEOPLE_FIELDS = ("merged_into", "merged_at", "email_opt_out", "email_opt_out_at", "email_opt_out_source", "erased_at")


@admin.action(description=gettext_lazy("Export personal data (JSON)"), permissions=["people"])
def privacy_export(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Lead]) -> HttpResponse | None:
    leads = list(queryset.order_by("pk")[: MAX_EXPORT + 1])
    if len(leads) > MAX_EXPORT:
        modeladmin.message_user(
            request, _("Export at most %(n)d people at a time.") % {"n": MAX_EXPORT}, messages.ERROR
        )
        return None
    actor = Actor.person(request.user)
    data = [export_person(lead, by=actor) for lead in leads]
    body = json.dumps(data[0] if len(data) == 1 else data, cls=DjangoJSONEncoder, indent=2)
    response = HttpResponse(body, content_type="application/json")
    name = f"person-{leads[0].pk}.json" if len(leads) == 1 else "people.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@admin.action(description=gettext_lazy("Erase personal data (keeps report counts)"), permissions=["people"])
def erase_personal_data(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Lead]
) -> HttpResponse | None:
    if request.POST.get("confirm") != "yes":
        return TemplateResponse(
            request,
            "admin/leads/erase_confirm.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": _("Erase personal data"),
                "leads": queryset.order_by("pk")[:200],
                "count": queryset.count(),
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": modeladmin.model._meta,
            },
        )
    actor = Actor.person(request.user)
    erased = 0
    for lead in queryset.order_by("pk"):
        erase_person(lead, by=actor)
        erased += 1
    modeladmin.message_user(request, _("Erased the personal data of %(n)d lead(s).") % {"n": erased}, messages.SUCCESS)
    return None


@admin.register(LeadAuditEntry)
class LeadAuditEntryAdmin(admin.ModelAdmin):
    """The people audit trail: view only."""

    list_display = ("at", "action", "lead", "other_lead", "actor_type", "actor")
    list_filter = ("action", "actor_type")
    raw_id_fields = ("lead", "other_lead")
    ordering = ("-id",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
