"""Admin screens for marketers and managers.

Stage, scores, owner and SLA columns are read-only here: every stage change goes through
`leads.lifecycle`, offered as admin actions. Errors from a move are shown per lead as admin
messages; the rest of the selection still goes ahead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import admin_people, lifecycle, permissions
from .forms import LeadIdentityForm
from .lifecycle import Actor, TransitionError
from .models import Event, Lead, Stage, StageTransition, Team, TeamMembership, Touch, UserProfile

# Columns only the lifecycle and scoring write.
LIFECYCLE_FIELDS = (
    "stage",
    "stage_entered_at",
    "owner",
    "team",
    "fit_score",
    "behavior_score",
    "scored_at",
    "sla_due_at",
    "sla_clock",
    "sla_warned_at",
    "first_touch_at",
    "recycle_count",
    "created_at",
    "updated_at",
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False
    classes = ["collapse"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class StageTransitionInline(ReadOnlyInline):
    model = StageTransition
    fields = (
        "at",
        "from_stage",
        "to_stage",
        "actor_type",
        "actor",
        "reason",
        "note",
        "fit_score",
        "behavior_score",
        "definition_version",
        "owner",
    )
    readonly_fields = fields
    ordering = ("-at", "-id")
    verbose_name_plural = _("stage history")


class TouchInline(ReadOnlyInline):
    model = Touch
    fields = ("at", "kind", "outcome", "user", "note")
    readonly_fields = fields


class EventInline(ReadOnlyInline):
    model = Event
    fields = ("occurred_at", "type", "properties", "event_id")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-occurred_at")


class EstimatedCountPaginator(Paginator):
    """An unfiltered lead list on PostgreSQL counts from the planner's estimate: an exact
    COUNT(*) over a million leads takes seconds; a filtered list still counts exactly."""

    @property
    def count(self) -> int:  # type: ignore[override]
        object_list = self.object_list  # the change list's QuerySet
        if connection.vendor == "postgresql" and isinstance(object_list, QuerySet) and not object_list.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [object_list.model._meta.db_table]
                )
                row = cursor.fetchone()
            if row and row[0] > 10_000:
                return int(row[0])
        return super().count


class CachedValuesFilter(admin.SimpleListFilter):
    """Filter choices from the distinct values of a column, cached for ten minutes so the
    lead list does not scan the table for them on every page."""

    field_name = ""

    def lookups(self, request, model_admin):
        values = cache.get_or_set(
            f"leads-admin-filter-{self.field_name}",
            lambda: list(
                Lead.objects.exclude(**{self.field_name: ""})
                .order_by(self.field_name)
                .values_list(self.field_name, flat=True)
                .distinct()
            ),
            600,
        )
        return [(value, value) for value in values]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field_name: self.value()})
        return queryset


class SourceFilter(CachedValuesFilter):
    title = _("source")
    parameter_name = field_name = "source"


class CountryFilter(CachedValuesFilter):
    title = _("country")
    parameter_name = field_name = "country"


class NoteForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Saved on each lead's stage history: say why."),
    )


class OverrideForm(NoteForm):
    to_stage = forms.ChoiceField(choices=Stage.choices, label=_("New stage"))
    field_order = ["to_stage", "note"]


# What an action did, per verb, with the count in the language's plural form.
DONE_MESSAGES: dict[str, Callable[[int], str]] = {
    "Promoted": lambda n: ngettext("Promoted %(count)s lead.", "Promoted %(count)s leads.", n),
    "Moved": lambda n: ngettext("Moved %(count)s lead.", "Moved %(count)s leads.", n),
    "Reassigned": lambda n: ngettext("Reassigned %(count)s lead.", "Reassigned %(count)s leads.", n),
}


def _apply_each(
    request: HttpRequest,
    queryset: QuerySet[Lead],
    move: Callable[[Lead], Any],
    verb: str,
    modeladmin: admin.ModelAdmin,
) -> None:
    """Run `move` on each lead; report successes in one message and each refusal on its own."""
    done = 0
    for lead in queryset:
        try:
            move(lead)
        except TransitionError as exc:
            modeladmin.message_user(request, f"{lead}: {exc.message}", messages.ERROR)
        else:
            done += 1
    if done:
        modeladmin.message_user(request, DONE_MESSAGES[verb](done) % {"count": done}, messages.SUCCESS)


def _note_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Lead],
    *,
    form_class: type[NoteForm],
    title: str,
    action: str,
    run: Callable[[Lead, dict], Any],
    verb: str,
) -> HttpResponse | None:
    """The intermediate page: ask for a note (and maybe a stage), then apply to the selection."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        _apply_each(request, queryset, lambda lead: run(lead, form.cleaned_data), verb, modeladmin)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "leads": queryset[:50],
        "count": queryset.count(),
        "action": action,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
    }
    return TemplateResponse(request, "admin/leads/lead/action_note.html", context)


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    form = LeadIdentityForm
    list_display = (
        "full_name_display",
        "email",
        "company",
        "stage",
        "fit_score",
        "behavior_score",
        "grade",
        "owner",
        "team",
        "sla_due_at",
        "created_at",
    )
    list_filter = ("stage", SourceFilter, CountryFilter, "team", "owner")
    paginator = EstimatedCountPaginator
    search_fields = ("email", "phone", "first_name", "last_name", "company", "external_id")
    list_select_related = ("owner", "team")
    readonly_fields = LIFECYCLE_FIELDS
    inlines = [StageTransitionInline, TouchInline, EventInline]
    # One million leads: no full COUNT(*) on every page.
    show_full_result_count = False
    list_per_page = 50
    # Newest first by primary key: served by its index, where created_at would sort the table.
    ordering = ("-id",)
    actions = [
        "promote_to_mql",
        "override_stage",
        "reassign_round_robin",
        admin_people.privacy_export,
        admin_people.erase_personal_data,
    ]
    fieldsets = (
        (
            "Contact",
            {
                "fields": (
                    "email",
                    "phone",
                    "social_profiles",
                    "first_name",
                    "last_name",
                    "job_title",
                    "company",
                    "industry",
                    "country",
                    "employees",
                    "annual_revenue",
                    "source",
                    "external_id",
                    "attributes",
                )
            },
        ),
        ("Lifecycle (changed only by the actions)", {"fields": LIFECYCLE_FIELDS}),
        (admin_people.PEOPLE_FIELDSET, {"fields": admin_people.PEOPLE_FIELDS}),
    )

    @admin.display(description=_("Name"), ordering="last_name")
    def full_name_display(self, lead: Lead) -> str:
        return lead.full_name

    @admin.display(description=_("Grade"), ordering="fit_score")
    def grade(self, lead: Lead) -> str:
        return lead.fit_grade

    def get_queryset(self, request):
        return permissions.visible_leads(request.user, super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        # A new lead starts as a plain lead; its lifecycle columns are never typed in.
        return (*LIFECYCLE_FIELDS, *admin_people.PEOPLE_FIELDS)

    # Which action each role sees (the transitions check again per lead).
    def has_promote_permission(self, request) -> bool:
        return permissions.is_marketing(request.user) or permissions.is_manager(request.user)

    def has_override_permission(self, request) -> bool:
        return permissions.is_manager(request.user)

    def has_people_permission(self, request) -> bool:
        """Privacy export and erasure: marketing and sales managers (SPEC section 1)."""
        return permissions.sees_all_leads(request.user)

    @admin.action(description=_("Promote to MQL (manual, with note)"), permissions=["promote"])
    def promote_to_mql(self, request, queryset):
        actor = Actor.person(request.user)
        return _note_action(
            self,
            request,
            queryset,
            form_class=NoteForm,
            title=_("Promote to MQL"),
            action="promote_to_mql",
            verb="Promoted",
            run=lambda lead, data: lifecycle.promote_to_mql(lead, actor=actor, reason="manual", note=data["note"]),
        )

    @admin.action(description=_("Reopen / override stage (managers, with note)"), permissions=["override"])
    def override_stage(self, request, queryset):
        actor = Actor.person(request.user)
        return _note_action(
            self,
            request,
            queryset,
            form_class=OverrideForm,
            title=_("Reopen / override stage"),
            action="override_stage",
            verb="Moved",
            run=lambda lead, data: lifecycle.override(lead, actor=actor, to_stage=data["to_stage"], note=data["note"]),
        )

    @admin.action(description=_("Reassign round-robin"), permissions=["override"])
    def reassign_round_robin(self, request, queryset):
        actor = Actor.person(request.user)
        _apply_each(request, queryset, lambda lead: lifecycle.reassign(lead, actor=actor), "Reassigned", self)


@admin.register(StageTransition)
class StageTransitionAdmin(admin.ModelAdmin):
    """The audit trail: view only, never added, changed or deleted here."""

    list_display = ("lead", "from_stage", "to_stage", "at", "actor_type", "actor", "reason", "definition_version")
    list_filter = ("to_stage", "from_stage", "actor_type", "reason")
    search_fields = ("lead__email", "note")
    list_select_related = ("lead", "actor")
    raw_id_fields = ("lead",)
    show_full_result_count = False
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class TeamMembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 1
    fields = ("user", "is_away", "last_assigned_at")
    readonly_fields = ("last_assigned_at",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "territory_list", "is_fallback", "manager", "member_count", "language")
    list_select_related = ("manager",)
    inlines = [TeamMembershipInline]

    @admin.display(description=_("Territories"))
    def territory_list(self, team: Team) -> str:
        return ", ".join(team.territories or []) or "—"

    @admin.display(description=_("Reps"))
    def member_count(self, team: Team) -> int:
        return team.memberships.count()


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("lead", "type", "occurred_at", "received_at")
    list_filter = ("type",)
    search_fields = ("lead__email", "event_id")
    raw_id_fields = ("lead",)
    list_select_related = ("lead",)
    show_full_result_count = False


@admin.register(Touch)
class TouchAdmin(admin.ModelAdmin):
    list_display = ("lead", "kind", "outcome", "user", "at")
    list_filter = ("kind", "outcome")
    search_fields = ("lead__email", "note")
    raw_id_fields = ("lead",)
    list_select_related = ("lead", "user")

    # Touches are logged on the lead page through the lifecycle (the first one stops an SLA
    # clock); the admin only shows them.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


from . import admin_webhooks  # noqa: E402,F401  (webhooks and delivery log)

# --- The user's language and time zone (issue 24) ----------------------------------------------


class UserProfileInline(admin.StackedInline):
    model = UserProfile
    can_delete = False
    fields = ("language", "time_zone")
    verbose_name_plural = _("language and time zone")


class LeadFlowUserAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, UserProfileInline]


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), LeadFlowUserAdmin)
