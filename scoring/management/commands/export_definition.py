"""manage.py export_definition [VERSION] [-o FILE]: the definition as SPEC section 9 JSON."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from scoring.definitions import definition_to_dict
from scoring.models import DefinitionState, QualifiedLeadDefinition


class Command(BaseCommand):
    help = "Write a qualified-lead definition (default: the active one) as JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("version", nargs="?", type=int, help="Definition version.")
        parser.add_argument("-o", "--output", help="File to write (default: standard output).")

    def handle(self, *args, **options) -> None:
        qs = QualifiedLeadDefinition.objects.all()
        if options["version"] is not None:
            definition = qs.filter(version=options["version"]).first()
            wanted = f"version {options['version']}"
        else:
            definition = qs.filter(state=DefinitionState.ACTIVE).first()
            wanted = "an active definition"
        if definition is None:
            raise CommandError(f"There is no {wanted}.")
        text = json.dumps(definition_to_dict(definition), indent=2, ensure_ascii=False) + "\n"
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as handle:
                handle.write(text)
            self.stdout.write(f"Wrote v{definition.version} to {options['output']}.")
        else:
            self.stdout.write(text, ending="")
