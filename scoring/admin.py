"""Definition admin for marketers: rules inline, clone to draft, sign-off, activate, preview,
and the JSON of SPEC section 9 to keep in version control.

Only drafts are edited; an active or retired definition is a record of what was agreed.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from leads import permissions
from reports import selectors as report_selectors
from reports.filters import ReportFilters

from . import definitions, reviews, services, suggest
from .forms import BehaviorRuleForm, ConditionRuleForm
from .models import (
    BehaviorRule,
    DefinitionReview,
    DefinitionSignature,
    DefinitionState,
    FitRule,
    Knockout,
    QualifiedLeadDefinition,
)
from .preview import DEFAULT_WINDOW_DAYS, preview


class DraftOnlyInline(admin.TabularInline):
    extra = 0

    def _editable(self, request, obj) -> bool:
        return obj is None or obj.state == DefinitionState.DRAFT

    def has_add_permission(self, request, obj=None) -> bool:
        return self._editable(request, obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._editable(request, obj) and super().has_delete_permission(request, obj)


class FitRuleInline(DraftOnlyInline):
    model = FitRule
    form = ConditionRuleForm
    fields = ("position", *definitions.FIT_RULE_FIELDS, "evidence")
    readonly_fields = ("evidence",)


class BehaviorRuleInline(DraftOnlyInline):
    model = BehaviorRule
    form = BehaviorRuleForm
    fields = ("position", *definitions.BEHAVIOR_RULE_FIELDS)


class KnockoutInline(DraftOnlyInline):
    model = Knockout
    form = ConditionRuleForm
    fields = ("position", *definitions.KNOCKOUT_FIELDS)


@admin.register(QualifiedLeadDefinition)
class QualifiedLeadDefinitionAdmin(admin.ModelAdmin):
    list_display = ("version", "name", "state", "signoffs", "review_by_flag", "activated_at")
    list_filter = ("state",)
    search_fields = ("name", "notes")
    inlines = [FitRuleInline, BehaviorRuleInline, KnockoutInline]
    actions = ["clone_to_draft", "sign", "activate", "suggest_from_customers"]
    readonly_fields = (
        "version",
        "state",
        "marketing_signed_by",
        "marketing_signed_at",
        "sales_signed_by",
        "sales_signed_at",
        "created_by",
        "created_at",
        "activated_at",
        "retired_at",
        "tools",
        "signature_history",
    )
    fieldsets = (
        (None, {"fields": ("name", "version", "state", "notes", "tools")}),
        (
            "Thresholds",
            {
                "fields": (
                    "fit_threshold",
                    "behavior_threshold",
                    "required_fields",
                    "hand_raisers",
                    "recycle_cooldown_days",
                    "review_by",
                )
            },
        ),
        (
            _("Sign-off"),
            {
                "fields": (
                    "marketing_signed_by",
                    "marketing_signed_at",
                    "sales_signed_by",
                    "sales_signed_at",
                    "created_by",
                    "created_at",
                    "activated_at",
                    "retired_at",
                    "signature_history",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.state != DefinitionState.DRAFT:
            return [f.name for f in self.model._meta.fields if f.name != "id"] + ["tools", "signature_history"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        """After the draft and its rules are saved: an edit of the signed content voids the
        standing signatures (they stay in the history)."""
        super().save_related(request, form, formsets, change)
        definition = form.instance
        if change and definition.state == DefinitionState.DRAFT:
            voided = definitions.void_stale_signatures(definition, by=request.user)
            if voided:
                self.message_user(
                    request,
                    _("The signed content changed: %(count)d signature(s) voided; both sides sign again.")
                    % {"count": voided},
                    messages.WARNING,
                )

    @admin.display(description=_("Signed by"))
    def signoffs(self, obj: QualifiedLeadDefinition) -> str:
        # A draft counts only standing signatures on its current content.
        draft = obj.state == DefinitionState.DRAFT
        missing = definitions.missing_signatures(obj) if draft else obj.missing_signoffs()
        return str(_("both")) if not missing else str(_("missing")) + " " + ", ".join(missing)

    @admin.display(description=_("Signature history"))
    def signature_history(self, obj: QualifiedLeadDefinition) -> str:
        if obj.pk is None:
            return "—"
        rows = DefinitionSignature.objects.filter(definition=obj).select_related("signer", "voided_by")
        if not rows:
            return str(_("No signatures yet."))
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                str(_("<li>{} — {} at {} (hash {}){}</li>")),
                (
                    (
                        row.get_side_display(),
                        getattr(row.signer, "username", "?"),
                        formats.date_format(timezone.localtime(row.signed_at), "SHORT_DATETIME_FORMAT"),
                        row.content_hash[:12],
                        format_html(
                            str(_(" — <strong>{} at {} by {}</strong>")),
                            row.get_void_reason_display(),
                            formats.date_format(timezone.localtime(row.voided_at), "SHORT_DATETIME_FORMAT"),
                            getattr(row.voided_by, "username", "?"),
                        )
                        if row.voided_at
                        else "",
                    )
                    for row in rows
                ),
            ),
        )

    @admin.display(description=_("Review by"), ordering="review_by")
    def review_by_flag(self, obj: QualifiedLeadDefinition) -> str:
        if obj.review_by is None:
            return "—"
        if obj.state == DefinitionState.ACTIVE and obj.review_by < timezone.localdate():
            return format_html(str(_("<strong>{} (overdue)</strong>")), formats.date_format(obj.review_by))
        return formats.date_format(obj.review_by)

    @admin.display(description=_("Tools"))
    def tools(self, obj: QualifiedLeadDefinition) -> str:
        if obj.pk is None:
            return _("Save the draft first.")
        review = ""
        if obj.state != DefinitionState.DRAFT:
            review = format_html(
                ' <a class="button" href="{}">{}</a>',
                reverse("admin:scoring_definition_review_figures", args=[obj.pk]),
                _("Figures for the review"),
            )
        return format_html(
            '<a class="button" href="{}">{}</a> <a class="button" href="{}">{}</a>{}',
            reverse("admin:scoring_definition_preview", args=[obj.pk]),
            _("Preview against history"),
            reverse("admin:scoring_definition_export", args=[obj.pk]),
            _("Download JSON"),
            review,
        )

    def get_urls(self):
        own = [
            path("<int:pk>/preview/", self.admin_site.admin_view(self.preview_view), name="scoring_definition_preview"),
            path("<int:pk>/export/", self.admin_site.admin_view(self.export_view), name="scoring_definition_export"),
            path(
                "<int:pk>/review-figures/",
                self.admin_site.admin_view(self.review_figures_view),
                name="scoring_definition_review_figures",
            ),
        ]
        return own + super().get_urls()

    # --- Actions --------------------------------------------------------------------------

    @admin.action(description=_("Clone to a new draft"))
    def clone_to_draft(self, request: HttpRequest, queryset: QuerySet) -> None:
        if not permissions.is_marketing(request.user):
            self.message_user(request, _("Only marketing creates drafts."), messages.ERROR)
            return
        for definition in queryset:
            try:
                copy = definitions.clone_definition(definition, user=request.user)
            except ValidationError as exc:
                self.message_user(request, f"v{definition.version}: {exc}", messages.ERROR)
                continue
            self.message_user(
                request,
                _("v%(version)s cloned to draft v%(copy)s.") % {"version": definition.version, "copy": copy.version},
            )

    @admin.action(description=_("Sign off (my side: marketing or sales)"))
    def sign(self, request: HttpRequest, queryset: QuerySet) -> None:
        for definition in queryset:
            try:
                definitions.sign_definition(definition, user=request.user)
            except definitions.DefinitionError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            self.message_user(
                request,
                _("v%(version)s signed by %(user)s.") % {"version": definition.version, "user": request.user.username},
            )

    @admin.action(description=_("Activate (needs both sign-offs; re-scores every open lead)"))
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        if queryset.count() != 1:
            self.message_user(request, _("Activate exactly one definition."), messages.ERROR)
            return
        definition = queryset.get()
        try:
            services.activate_definition(definition, user=request.user)
        except definitions.DefinitionError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(
            request,
            _("v%(version)s is active; every open lead is being re-scored in the background.")
            % {"version": definition.version},
        )

    @admin.action(description=_("Suggest a new draft from won and lost leads (the selection is not used)"))
    def suggest_from_customers(self, request: HttpRequest, queryset: QuerySet) -> None:
        if not permissions.is_marketing(request.user):
            self.message_user(request, _("Only marketing creates drafts."), messages.ERROR)
            return
        try:
            result = suggest.suggest_definition(user=request.user)
        except suggest.SuggestError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        draft, figures = result.definition, result.validation["suggestion"]
        self.message_user(
            request,
            _("Draft v%(version)s suggested: held-out AUC %(auc)s, MQL rate %(rate)s at threshold %(threshold)s.")
            % {
                "version": draft.version,
                "auc": figures["auc"],
                "rate": figures["mql_rate"],
                "threshold": figures["threshold"],
            },
        )

    # --- Views ----------------------------------------------------------------------------

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        definition = get_object_or_404(QualifiedLeadDefinition, pk=pk)
        if not permissions.sees_all_leads(request.user):
            return HttpResponse(_("Preview is for marketing and sales managers."), status=403)
        today = timezone.localdate()
        errors = []
        date_to, date_from = today, today - dt.timedelta(days=DEFAULT_WINDOW_DAYS)
        for name in ("from", "to"):
            raw = request.GET.get(name)
            if raw:
                try:
                    value = dt.date.fromisoformat(raw)
                except ValueError:
                    errors.append(str(_("'%(value)s' is not a date (YYYY-MM-DD).")) % {"value": raw})
                    continue
                if name == "from":
                    date_from = value
                else:
                    date_to = value
        if date_from > date_to:
            errors.append(str(_("The window's start is after its end.")))
        data = None if errors else preview(definition, date_from=date_from, date_to=date_to)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": definition,
            "title": _("Preview of v%(version)s %(name)s") % {"version": definition.version, "name": definition.name},
            "preview": data,
            "errors": errors,
            "date_from": date_from,
            "date_to": date_to,
        }
        return TemplateResponse(request, "admin/scoring/qualifiedleaddefinition/preview.html", context)

    def review_figures_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The numbers the quarterly review meeting needs, since the version's last review (or
        its activation): MQLs delivered vs target, acceptance, rejection reasons, MQL->SQL
        efficiency and velocity against the SLA. The reports' own selectors compute them."""
        definition = get_object_or_404(QualifiedLeadDefinition, pk=pk)
        if not permissions.sees_all_leads(request.user):
            return HttpResponse(_("The review figures are for marketing and sales managers."), status=403)
        today = timezone.localdate()
        last = DefinitionReview.objects.filter(definition=definition).first()
        if last is not None:
            since = last.held_on
        elif definition.activated_at is not None:
            since = timezone.localtime(definition.activated_at).date()
        else:
            since = today - dt.timedelta(days=DEFAULT_WINDOW_DAYS)
        until = today if definition.retired_at is None else timezone.localtime(definition.retired_at).date()
        since = min(since, until)
        window: dict[str, Any] = {"date_from": since, "date_to": until, "filters": ReportFilters()}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": definition,
            "title": _("Review figures of v%(version)s %(name)s")
            % {"version": definition.version, "name": definition.name},
            "since": since,
            "until": until,
            "last_review": last,
            "commitment": report_selectors.commitment(**window),
            "efficiency": report_selectors.efficiency(**window),
            "rejections": report_selectors.rejections(**window),
            "velocity": report_selectors.velocity(**window),
        }
        return TemplateResponse(request, "admin/scoring/qualifiedleaddefinition/review_figures.html", context)

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        definition = get_object_or_404(QualifiedLeadDefinition, pk=pk)
        if not self.has_view_permission(request, definition):
            return HttpResponseRedirect(reverse("admin:index"))
        body = json.dumps(definitions.definition_to_dict(definition), indent=2, ensure_ascii=False)
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="definition-v{definition.version}.json"'
        return response


@admin.register(DefinitionReview)
class DefinitionReviewAdmin(admin.ModelAdmin):
    """The quarterly review meeting of a version: who met, what they decided, keep or change
    (with the new draft). Recording one answers the review reminders; "keep" on the version in
    force moves its next review a quarter on."""

    list_display = ("definition", "held_on", "outcome", "new_draft", "recorded_by")
    list_filter = ("outcome",)
    filter_horizontal = ("attendees",)
    fields = ("definition", "held_on", "attendees", "decisions", "outcome", "new_draft")
    readonly_fields = ("recorded_by", "recorded_at")

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.recorded_by = request.user
        super().save_model(request, obj, form, change)
        reviews.after_review_recorded(obj)
