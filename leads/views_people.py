"""The "possible duplicates" page for marketing and sales managers (issue 21): candidate pairs
with why they match, and a merge button per pair (POST with CSRF). The merging is
`leads.services.merge`'s."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import permissions
from .lifecycle import Actor
from .models import Lead
from .services.duplicates import find_duplicates, suggested_survivor
from .services.errors import ServiceError
from .services.merge import merge_leads
from .templatetags.leadflow_ui import APP_MESSAGE_TAG

PAGE_LIMIT = 100


def _require_people_role(user) -> None:
    if not permissions.sees_all_leads(user):
        raise PermissionDenied(_("Only marketing and sales managers may see and merge duplicates."))


@login_required
def duplicates(request: HttpRequest) -> HttpResponse:
    _require_people_role(request.user)
    pairs = []
    for candidate in find_duplicates(limit=PAGE_LIMIT, queryset=permissions.visible_leads(request.user)):
        survivor, duplicate = suggested_survivor(candidate)
        pairs.append({"candidate": candidate, "survivor": survivor, "duplicate": duplicate})
    return render(request, "leads/duplicates.html", {"pairs": pairs, "limit": PAGE_LIMIT})


@login_required
@require_POST
def merge(request: HttpRequest) -> HttpResponse:
    _require_people_role(request.user)
    visible = permissions.visible_leads(request.user)
    try:
        survivor = get_object_or_404(visible, pk=int(request.POST.get("survivor", "")))
        duplicate = get_object_or_404(visible, pk=int(request.POST.get("duplicate", "")))
    except ValueError:
        messages.error(request, _("Choose two leads to merge."), extra_tags=APP_MESSAGE_TAG)
        return redirect("lead-duplicates")
    try:
        merge_leads(survivor, duplicate, by=Actor.person(request.user))
    except ServiceError as exc:
        messages.error(request, exc.message, extra_tags=APP_MESSAGE_TAG)
        return redirect("lead-duplicates")
    survivor = Lead.objects.get(pk=survivor.pk)
    messages.success(
        request,
        _("Lead %(duplicate)s was merged into %(survivor)s.") % {"duplicate": duplicate.pk, "survivor": survivor},
        extra_tags=APP_MESSAGE_TAG,
    )
    return redirect("lead-duplicates")
