"""Scoring tasks. Both are idempotent: a rescore recomputes scores from the stored events and
promotes only leads still at `lead`/`recycled` (the transition compares-and-sets the stage), so
two workers running one at once write the same numbers and promote each lead once."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import feedback, reviews, services

# The whole-table rescores get the long limit (settings: LONG_TASK_TIME_LIMIT, below the Redis
# visibility timeout); every other task the default CELERY_TASK_TIME_LIMIT.
LONG = {"time_limit": settings.LONG_TASK_TIME_LIMIT, "soft_time_limit": settings.LONG_TASK_TIME_LIMIT - 60}


@shared_task(name="scoring.tasks.refresh_decayed_scores", **LONG)
def refresh_decayed_scores() -> str:
    """Daily: decay lowers the stored behavior score of leads whose interest has faded (a row of
    the rescore outbox, run at once, redone by beat should this worker die)."""
    return services.refresh_decayed_scores()


@shared_task(name="scoring.tasks.rescore_all", **LONG)
def rescore_all_task() -> dict[str, int]:
    """Every open lead scored under the active definition (activation goes through the outbox)."""
    return services.rescore_all()


@shared_task(name="scoring.tasks.run_rescore_request", ignore_result=True, **LONG)
def run_rescore_request_task(request_id: int) -> str:
    """One row of the rescore outbox; a row already done or claimed by a live worker is skipped."""
    return services.run_rescore_request(request_id)


@shared_task(name="scoring.tasks.redo_rescore_outbox", ignore_result=True)
def redo_rescore_outbox() -> int:
    """Beat, every RESCORE_CLAIM_SECONDS: queue again the outbox rows whose task was lost or whose
    worker died mid-rescore (its lease ran out); drop rows done more than a week ago."""
    due = services.unfinished_rescore_requests()
    for request_id in due:
        run_rescore_request_task.apply_async((request_id,), retry=False)
    services.forget_done_rescore_requests()
    return len(due)


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
