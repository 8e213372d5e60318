"""Rebuild the report rollup now (beat does it every five minutes)."""

from django.core.management.base import BaseCommand

from reports import rollup


class Command(BaseCommand):
    help = "Rebuild the report rollup the count reports read (funnel, efficiency, sources, rejections, commitment)."

    def handle(self, *args, **options):
        self.stdout.write("Building the report rollup from the stage history…")
        state = rollup.build()
        if state is None:
            self.stdout.write(self.style.WARNING("Another worker is building it right now; nothing done."))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Built from {state.entries:,} stage entries in {state.build_seconds:.1f} s (days in {state.timezone})."
            )
        )
