"""`manage.py sla_sweep [--now ISO8601 [--simulate]] [--dry-run]`: the same sweep beat runs every minute."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sla.sweep import DEFAULT_BATCH_SIZE, FutureMoment, run_sweep


class Command(BaseCommand):
    help = (
        'Warn and act on SLA clocks due now, or at --now ("what breaches by Friday?"). '
        "A future --now needs --simulate (records the breaches, marked with the simulated moment "
        "and the real time) or --dry-run (lists what would breach without changing anything)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--now", help="Run as if at this ISO 8601 moment (default: now, UTC if no offset).")
        parser.add_argument(
            "--simulate",
            action="store_true",
            help="Allow a future --now: act as if it were that moment (breach rows record both times).",
        )
        parser.add_argument("--dry-run", action="store_true", help="List what would breach; change nothing.")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
        parser.add_argument("--no-email", action="store_true", help="Record breaches without sending email.")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        if options["now"]:
            try:
                now = dt.datetime.fromisoformat(options["now"])
            except ValueError as exc:
                raise CommandError(f"--now must be an ISO 8601 moment like 2026-12-04T17:00:00+01:00 ({exc})") from exc
            if timezone.is_naive(now):
                now = now.replace(tzinfo=dt.UTC)
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            result = run_sweep(
                now=now,
                dry_run=options["dry_run"],
                simulate=options["simulate"],
                batch_size=options["batch_size"],
                notify=not options["no_email"],
                progress=lambda line: self.stderr.write(line),
            )
        except FutureMoment as exc:
            raise CommandError(str(exc)) from exc
        if options["dry_run"]:
            for row in result.would_breach:
                self.stdout.write(
                    f"lead {row['id']}\t{row['stage']}\t{row['sla_clock']}\t"
                    f"due {row['sla_due_at'].isoformat()}\t-> {row['action']}"
                )
            self.stdout.write(
                f"{len(result.would_breach)} leads would breach by {now.isoformat()} (dry run: nothing changed)"
            )
            return
        prefix = "SIMULATED " if now > timezone.now() else ""
        self.stdout.write(prefix + result.summary())
