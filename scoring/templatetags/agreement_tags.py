"""The dashboard notice of the agreement's quarterly review, shown to both sides of it."""

from __future__ import annotations

from typing import Any

from django import template

from leads import permissions
from scoring.models import ReviewNotice
from scoring.reviews import open_review_notice

register = template.Library()


@register.simple_tag
def review_notice_for(user: Any) -> ReviewNotice | None:
    """The open review reminder for marketing and sales managers; None for anyone else."""
    if not (permissions.is_marketing(user) or permissions.is_manager(user)):
        return None
    return open_review_notice()
