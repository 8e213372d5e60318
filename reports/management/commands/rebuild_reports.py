"""Empty the report read model and count the whole stage history again (a repair, or after
changing TIME_ZONE). Batches of REPORTS_CATCH_UP_BATCH rows, each its own short transaction:
the application keeps writing, and reports read the previous numbers' replacement as it fills."""

from django.core.management.base import BaseCommand
from tqdm import tqdm

from leads.models import Lead, StageTransition
from reports import readmodel


class Command(BaseCommand):
    help = "Rebuild the report read model (funnel, efficiency, sources, rejections, commitment) from the history."

    def handle(self, *args, **options):
        total = StageTransition.objects.count() + Lead.objects.count()
        bar = tqdm(total=total, unit="row", disable=options.get("verbosity", 1) == 0, file=self.stderr._out)
        seen = 0

        def advance(progress: readmodel.Progress) -> None:
            nonlocal seen
            done = progress.transitions + progress.leads
            bar.update(done - seen)
            seen = done

        progress = readmodel.rebuild(on_batch=advance)
        bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"Counted {progress.transitions:,} stage changes and {progress.leads:,} leads"
                f" in {progress.batches:,} batches."
            )
        )
