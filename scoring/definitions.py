"""Qualified-lead definitions as data: JSON in and out (SPEC section 9), drafts, sign-offs,
copies. Activation, which re-scores every open lead, is in `scoring.services`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from leads import permissions

from . import engine
from .models import BehaviorRule, DefinitionState, FitRule, Knockout, QualifiedLeadDefinition

DEFINITION_FIELDS = (
    "name",
    "fit_threshold",
    "behavior_threshold",
    "required_fields",
    "hand_raisers",
    "recycle_cooldown_days",
)
FIT_RULE_FIELDS = ("name", "field", "operator", "value", "points")
BEHAVIOR_RULE_FIELDS = (
    "name",
    "event_type",
    "property",
    "property_operator",
    "property_value",
    "points",
    "max_occurrences",
    "half_life_days",
)
KNOCKOUT_FIELDS = ("name", "field", "operator", "value")


class DefinitionError(Exception):
    """A refused definition action; `code` is stable, `message` says what to do."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- Definition <-> JSON (SPEC section 9) ---------------------------------------------------


def definition_to_dict(definition: QualifiedLeadDefinition) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(definition, name) for name in DEFINITION_FIELDS}
    data["fit_rules"] = []
    for fit_rule in definition.fit_rules.all():
        fit_row = {name: getattr(fit_rule, name) for name in FIT_RULE_FIELDS}
        if fit_rule.evidence is not None:  # only suggested rules carry it
            fit_row["evidence"] = fit_rule.evidence
        data["fit_rules"].append(fit_row)
    data["behavior_rules"] = []
    for rule in definition.behavior_rules.all():
        row = {name: getattr(rule, name) for name in BEHAVIOR_RULE_FIELDS}
        if not rule.property:
            for name in ("property", "property_operator", "property_value"):
                row.pop(name)
        data["behavior_rules"].append(row)
    data["knockouts"] = [{name: getattr(rule, name) for name in KNOCKOUT_FIELDS} for rule in definition.knockouts.all()]
    return data


def _rule_errors(prefix: str, exc: ValidationError) -> dict[str, Any]:
    return {f"{prefix}.{name}": messages for name, messages in exc.message_dict.items()}


def create_definition(data: object, *, user) -> QualifiedLeadDefinition:
    """A new draft from the JSON of SPEC section 9. Nothing is written unless all of it is valid;
    a `ValidationError` names each bad field, e.g. `fit_rules[1].value`."""
    if not isinstance(data, Mapping):
        raise ValidationError({"non_field_errors": ["A definition is a JSON object."]})
    errors: dict[str, Any] = {}
    if not str(data.get("name") or "").strip():
        errors["name"] = ["A definition needs a name."]
    definition = QualifiedLeadDefinition(
        created_by=user if getattr(user, "is_authenticated", False) else None,
        state=DefinitionState.DRAFT,
        **{name: data[name] for name in DEFINITION_FIELDS if name in data and name != "name"},
        name=str(data.get("name") or "").strip(),
        review_by=data.get("review_by"),
        notes=str(data.get("notes") or ""),
    )
    try:
        definition.full_clean(exclude=["version", "name", "review_by"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    rules: list[Any] = []
    for key, model, allowed in (
        ("fit_rules", FitRule, (*FIT_RULE_FIELDS, "evidence")),
        ("behavior_rules", BehaviorRule, BEHAVIOR_RULE_FIELDS),
        ("knockouts", Knockout, KNOCKOUT_FIELDS),
    ):
        items = data.get(key, [])
        if not isinstance(items, list):
            errors[key] = ["A list of rules."]
            continue
        for position, item in enumerate(items):
            prefix = f"{key}[{position}]"
            if not isinstance(item, Mapping):
                errors[prefix] = ["A rule is a JSON object."]
                continue
            unknown = sorted(set(item) - set(allowed))
            if unknown:
                errors[prefix] = [f"Unknown key(s): {', '.join(unknown)}."]
                continue
            values = {name: item[name] for name in allowed if name in item}
            for text_field in ("property", "property_operator"):
                if text_field in values and values[text_field] is None:
                    values[text_field] = ""
            rule = model(position=position, **values)
            try:
                rule.full_clean(exclude=["definition"])
            except ValidationError as exc:
                errors.update(_rule_errors(prefix, exc))
            rules.append(rule)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        definition.save()
        for rule in rules:
            rule.definition = definition
            rule.save()
    return definition


def compiled(definition: QualifiedLeadDefinition) -> engine.CompiledDefinition:
    return engine.compile_definition(definition_to_dict(definition), version=definition.version)


def active_definition() -> QualifiedLeadDefinition | None:
    return (
        QualifiedLeadDefinition.objects.filter(state=DefinitionState.ACTIVE)
        .prefetch_related("fit_rules", "behavior_rules", "knockouts")
        .first()
    )


# --- Sign-off, activation, cloning ----------------------------------------------------------


def sign_definition(definition: QualifiedLeadDefinition, *, user) -> QualifiedLeadDefinition:
    """The calling user signs their side: marketing, or sales as a sales manager."""
    if definition.state != DefinitionState.DRAFT:
        raise DefinitionError(
            f"Definition v{definition.version} is {definition.state}; only drafts are signed.",
            code="not_a_draft",
        )
    now = timezone.now()
    fields: list[str] = []
    if permissions.has_role(user, permissions.MARKETING) or (
        user.is_superuser and definition.marketing_signed_by_id is None
    ):
        definition.marketing_signed_by, definition.marketing_signed_at = user, now
        fields += ["marketing_signed_by", "marketing_signed_at"]
    elif permissions.has_role(user, permissions.SALES_MANAGER) or user.is_superuser:
        definition.sales_signed_by, definition.sales_signed_at = user, now
        fields += ["sales_signed_by", "sales_signed_at"]
    else:
        raise DefinitionError("Only a marketing user or a sales manager signs a definition.", code="permission_denied")
    definition.save(update_fields=fields)
    return definition


def clone_definition(definition: QualifiedLeadDefinition, *, user) -> QualifiedLeadDefinition:
    """A new draft with the same rules and thresholds, unsigned."""
    data = definition_to_dict(definition)
    data["name"] = f"{definition.name} (copy)"
    data["notes"] = definition.notes
    return create_definition(data, user=user)


def import_definition(data: Mapping[str, Any], *, user=None) -> QualifiedLeadDefinition:
    return create_definition(data, user=user)
