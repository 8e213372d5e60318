"""The agreement in force as one page (`/agreement/`): what a rep opens to see what was
promised. Every signed-in user reads it; nothing on it is edited here (the admin is for that)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import selectors


@login_required
def agreement(request: HttpRequest) -> HttpResponse:
    return render(request, "scoring/agreement.html", selectors.current_agreement())
