"""Admin for webhooks: subscriptions (sales managers) and the read-only delivery log."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookSubscription
from .webhooks import schedule


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("url", "events", "active", "failing", "consecutive_failures", "created_at")
    list_filter = ("active", "failing")
    search_fields = ("url",)
    readonly_fields = ("failing", "consecutive_failures", "created_by", "created_at")

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("at", "status_code", "error", "duration_ms")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event", "subscription", "status", "attempts", "last_status_code", "next_attempt_at")
    list_filter = ("status", "event")
    search_fields = ("id", "subscription__url")
    date_hierarchy = "created_at"
    inlines = [WebhookAttemptInline]
    actions = ["retry_now"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description=_("Retry the selected deliveries now"))
    def retry_now(self, request, queryset) -> None:
        ids = list(queryset.exclude(status=DeliveryStatus.DELIVERED).values_list("pk", flat=True))
        # A manual retry starts a fresh 24-hour window, or a given-up row would give up again at once.
        queryset.filter(pk__in=ids).update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=timezone.now(),
            claimed_until=None,
            created_at=timezone.now(),
        )
        schedule([str(pk) for pk in ids])
        self.message_user(
            request,
            ngettext("%(count)s delivery queued again.", "%(count)s deliveries queued again.", len(ids))
            % {"count": len(ids)},
            messages.SUCCESS,
        )
