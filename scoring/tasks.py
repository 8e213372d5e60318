"""Scoring tasks. Both are idempotent: a rescore recomputes scores from the stored events and
promotes only leads still at `lead`/`recycled` (the transition compares-and-sets the stage), so
two workers running one at once write the same numbers and promote each lead once."""

from __future__ import annotations

from celery import shared_task

from . import feedback, reviews, services


@shared_task(name="scoring.tasks.refresh_decayed_scores")
def refresh_decayed_scores() -> dict[str, int]:
    """Daily: decay lowers the stored behavior score of leads whose interest has faded."""
    return services.refresh_decayed_scores()


@shared_task(name="scoring.tasks.rescore_all")
def rescore_all_task() -> dict[str, int]:
    """Queued on activation: every open lead scored under the new definition."""
    return services.rescore_all()


@shared_task(name="scoring.tasks.rescore_leads")
def rescore_leads_task(lead_ids: list[int]) -> int:
    return services.rescore_leads(lead_ids)


@shared_task(name="scoring.tasks.send_review_reminders")
def send_review_reminders_task() -> int | None:
    """Daily: remind both sides of the agreement's quarterly review (at most once per notice)."""
    notice = reviews.send_review_reminders()
    return notice.pk if notice else None


@shared_task(name="scoring.tasks.send_feedback_digests")
def send_feedback_digests_task() -> int:
    """Weekly: marketing's digest of rejected MQLs and delivery against the commitment."""
    return feedback.send_feedback_digests()
