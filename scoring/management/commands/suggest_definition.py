"""manage.py suggest_definition: a draft definition learnt from won and lost leads."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scoring import suggest


class Command(BaseCommand):
    help = "Suggest a draft definition from leads whose outcome is known, and print its held-out check."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", help="Name of the draft")
        parser.add_argument("--fields", help="Comma-separated lead fields or attribute keys (default: all usable)")
        parser.add_argument("--from", dest="date_from", type=dt.date.fromisoformat, help="Outcomes from (YYYY-MM-DD)")
        parser.add_argument("--to", dest="date_to", type=dt.date.fromisoformat, help="Outcomes until (YYYY-MM-DD)")
        parser.add_argument("--target-mql-rate", type=float, default=suggest.DEFAULT_TARGET_MQL_RATE)

    def handle(self, *args, **options) -> None:
        fields = [f.strip() for f in options["fields"].split(",") if f.strip()] if options["fields"] else None
        try:
            result = suggest.suggest_definition(
                user=None,
                name=options["name"],
                fields=fields,
                date_from=options["date_from"],
                date_to=options["date_to"],
                target_mql_rate=options["target_mql_rate"],
            )
        except suggest.SuggestError as exc:
            raise CommandError(exc.message) from None
        definition, validation = result.definition, result.validation
        self.stdout.write(f"Draft id {definition.pk} (v{definition.version}): {definition.fit_rules.count()} fit rules")
        for skipped in result.skipped:
            self.stdout.write(f"  skipped {skipped['field']}: {skipped['reason']}")
        self.stdout.write(
            f"Held-out check on {validation['held_out']} leads (trained on {validation['trained_on']}, "
            f"seed {validation['seed']}):"
        )
        self.stdout.write(f"  {'':<12} {'AUC':>6} {'thresh':>6} {'MQL rate':>8} {'won share':>9} {'precision':>9}")
        for label, row in (("suggestion", validation["suggestion"]), ("active", validation["active"])):
            if row is None:
                self.stdout.write(f"  {label:<12} (no active definition)")
                continue
            self.stdout.write(
                f"  {label:<12} {row['auc']:>6.3f} {row['threshold']:>6g} {row['mql_rate']:>8.1%} "
                f"{row['won_share'] or 0:>9.1%} {row['precision'] or 0:>9.1%}"
            )
        lifts = " ".join(f"{d['lift']}" for d in validation["suggestion"]["lift_by_decile"])
        self.stdout.write(f"  lift by score decile (top first): {lifts}")
