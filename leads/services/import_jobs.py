"""Import jobs: an upload to `POST /api/v1/import/` kept on disk and imported once.

An upload up to settings.IMPORT_SYNC_MAX_BYTES is imported during the request (the client gets
the summary at once); a larger one is imported by the Celery task `leads.tasks.run_import_job`
and the client polls the job, which counts the rows done. Either way the job keeps the summary,
so the rejected rows can be downloaded as CSV afterwards. Running a job twice is harmless: it is
claimed by a conditional UPDATE, and a re-import of the same file changes nothing anyway.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from leadflow.celery import task as celery_task

from ..models import ImportJob, ImportStatus
from .importer import ImportFileError, import_leads


class TooLarge(ValueError):
    pass


def save_upload(stream: IO[bytes], *, limit: int | None = None) -> tuple[Path, int]:
    """Copy an upload to IMPORT_DIR in blocks; TooLarge past `limit` bytes (the partial copy
    removed). Memory stays at one block whatever the size."""
    limit = settings.IMPORT_MAX_BYTES if limit is None else limit
    folder = Path(settings.IMPORT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4()}.csv"
    size = 0
    with path.open("wb") as out:
        while block := stream.read(1024 * 1024):
            size += len(block)
            if size > limit:
                out.close()
                path.unlink(missing_ok=True)
                raise TooLarge(_("The file is larger than %(limit)d bytes.") % {"limit": limit})
            out.write(block)
    return path, size


def start_import(path: Path, size: int, *, user: Any) -> ImportJob:
    """A job for the file at `path`: run now if small, else queued for a worker."""
    job = ImportJob.objects.create(created_by=user, path=str(path), size=size)
    if size <= settings.IMPORT_SYNC_MAX_BYTES:
        run_job(job.pk)
        job.refresh_from_db()
    else:
        transaction.on_commit(lambda: celery_task("leads.tasks.run_import_job").delay(str(job.pk)))
    return job


def run_job(job_id: Any) -> str:
    """Import the job's file once; the job ends done (with the summary) or failed (with why)."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(status=ImportStatus.RUNNING)
    if not claimed:
        return "skipped"
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)

    def progress(phase: str, seen: int) -> None:
        # Called every 1,000 rows of each pass: the rows validated, then the rows written.
        ImportJob.objects.filter(pk=job.pk).update(rows_processed=seen)

    try:
        result = import_leads(Path(job.path), user=job.created_by, progress=progress)
    except ImportFileError as exc:
        job.status, job.error = ImportStatus.FAILED, str(exc)
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        return "failed"
    finally:
        Path(job.path).unlink(missing_ok=True)
    job.status, job.result, job.encoding = ImportStatus.DONE, result.as_dict(), result.encoding
    job.rows_processed, job.finished_at = result.rows, timezone.now()
    job.save(update_fields=["status", "result", "encoding", "rows_processed", "finished_at"])
    return "done"
