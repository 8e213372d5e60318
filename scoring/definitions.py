"""Qualified-lead definitions as data: JSON in and out (SPEC section 9), drafts and their
edits, sign-offs bound to a content hash, copies. Activation, which re-scores every open lead,
is in `scoring.services`.

A signature is worth only what it signed: `content_hash` is the SHA-256 of the canonical JSON
of the signed content (name, thresholds, required fields, hand-raisers, cool-down, every rule,
and the SLA terms in force). Each signature row keeps the hash it signed; an edit that changes
the content voids the standing signatures (kept as history), and activation counts only
unvoided signatures on the current hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from leads import permissions
from leads.models import WRITABLE_FIELDS, Lead
from sla.models import POLICY_TERM_FIELDS, SlaPolicy

from . import engine
from .models import (
    BehaviorRule,
    DefinitionSignature,
    DefinitionState,
    FitRule,
    Knockout,
    QualifiedLeadDefinition,
    SignatureSide,
    VoidReason,
)

# Lead columns a rule may name; any other name is a key of the lead's `attributes` JSON.
FACT_FIELDS = WRITABLE_FIELDS
# The columns the admin's rule editor offers (`attributes` itself is not a value to compare).
LEAD_COLUMNS = tuple(name for name in FACT_FIELDS if name != "attributes")
# The SLA policy fields that are terms of the agreement (what a clock promises and does).
SLA_TERM_FIELDS = ("clock", "stage", "version", *POLICY_TERM_FIELDS)

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


def unknown_field_problem(field: str | None) -> str | None:
    """Why `field` names nothing a rule can read, or None: a lead column, or a key some lead
    carries in its `attributes` (a typo such as 'emplyees' would otherwise silently never
    match). Asked only when a definition is written, so the look-up's cost does not matter."""
    if field is None or field in FACT_FIELDS:
        return None
    if field and Lead.objects.filter(attributes__has_key=field).exists():
        return None
    return _("Unknown lead field '%(field)s': not a lead column (%(columns)s) and no lead has it in attributes.") % {
        "field": field,
        "columns": ", ".join(LEAD_COLUMNS),
    }


def _review_by(value: Any, errors: dict[str, Any]) -> dt.date | None:
    """`review_by` from JSON: an ISO date or null; anything else is a field error."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    errors["review_by"] = [_("A date as YYYY-MM-DD, or null.")]
    return None


RULE_LISTS = (
    ("fit_rules", FitRule, (*FIT_RULE_FIELDS, "evidence")),
    ("behavior_rules", BehaviorRule, BEHAVIOR_RULE_FIELDS),
    ("knockouts", Knockout, KNOCKOUT_FIELDS),
)


def _build_rules(data: Mapping[str, Any], errors: dict[str, Any]) -> dict[str, list[Any]]:
    """Unsaved rule rows of every rule list present in `data`, validated; problems go into
    `errors` under the rule's index and field (`fit_rules[1].field`)."""
    built: dict[str, list[Any]] = {}
    for key, model, allowed in RULE_LISTS:
        if key not in data:
            continue
        items = data[key]
        if not isinstance(items, list):
            errors[key] = ["A list of rules."]
            continue
        rules = built[key] = []
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
            field_problem = unknown_field_problem(getattr(rule, "field", None))
            if field_problem:
                errors.setdefault(f"{prefix}.field", []).append(field_problem)
            rules.append(rule)
    return built


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
        review_by=_review_by(data.get("review_by"), errors),
        notes=str(data.get("notes") or ""),
    )
    try:
        definition.full_clean(exclude=["version", "name", "review_by"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    rules = _build_rules({key: data.get(key, []) for key, _model, _allowed in RULE_LISTS}, errors)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        definition.save()
        for rule in (rule for key_rules in rules.values() for rule in key_rules):
            rule.definition = definition
            rule.save()
    return definition


EDITABLE_FIELDS = (*DEFINITION_FIELDS, "notes", "review_by")


def update_definition(definition: QualifiedLeadDefinition, data: object, *, user) -> QualifiedLeadDefinition:
    """Edit a draft with part of the JSON of SPEC section 9 (the API's PATCH): top-level fields
    given replace theirs, a rule list given replaces the whole list. Validated as
    `create_definition` is; nothing is written unless all of it is valid. An edit that changes
    the signed content voids the draft's standing signatures. Only drafts are edited
    (`DefinitionError` "not_a_draft" otherwise: an active or retired version is a record)."""
    if not isinstance(data, Mapping):
        raise ValidationError({"non_field_errors": ["A definition is a JSON object."]})
    unknown = sorted(set(data) - set(EDITABLE_FIELDS) - {key for key, _m, _a in RULE_LISTS})
    errors: dict[str, Any] = {}
    if unknown:
        errors["non_field_errors"] = [_("Unknown or read-only key(s): %(keys)s.") % {"keys": ", ".join(unknown)}]
    with transaction.atomic():
        draft = QualifiedLeadDefinition.objects.select_for_update().get(pk=definition.pk)
        if draft.state != DefinitionState.DRAFT:
            raise DefinitionError(
                _("Definition v%(version)s is %(state)s and read-only; copy it to a new draft to change it.")
                % {"version": draft.version, "state": draft.state},
                code="not_a_draft",
            )
        for name in EDITABLE_FIELDS:
            if name in data:
                value = data[name]
                if name in ("name", "notes"):
                    value = str(value or "").strip()
                elif name == "review_by":
                    value = _review_by(value, errors)
                setattr(draft, name, value)
        if "name" in data and not draft.name:
            errors["name"] = ["A definition needs a name."]
        try:
            draft.full_clean(exclude=["version", "name"])
        except ValidationError as exc:
            errors.update(exc.message_dict)
        rules = _build_rules(data, errors)
        if errors:
            raise ValidationError(errors)
        draft.save()
        for key, new_rules in rules.items():
            getattr(draft, key).all().delete()
            for rule in new_rules:
                rule.definition = draft
                rule.save()
        void_stale_signatures(draft, by=user)
    # The caller's object shows what was saved (and that its rule caches are gone).
    definition.refresh_from_db()
    definition.__dict__.pop("_prefetched_objects_cache", None)
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


def _canonical(value: Any) -> Any:
    """Numbers as the database gives them back either way (50 and 50.0 are one threshold)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def sla_terms() -> list[dict[str, Any]]:
    """The SLA policies in force, as the agreement states them (each with its version)."""
    rows = SlaPolicy.objects.filter(active=True).order_by("clock").values(*SLA_TERM_FIELDS)
    return [dict(row) for row in rows]


def signed_content(definition: QualifiedLeadDefinition) -> dict[str, Any]:
    """What a signature binds: the definition's JSON (read back from the database, so a
    half-saved form cannot differ from what is stored) and the SLA terms in force."""
    fresh = QualifiedLeadDefinition.objects.prefetch_related("fit_rules", "behavior_rules", "knockouts").get(
        pk=definition.pk
    )
    return _canonical({"definition": definition_to_dict(fresh), "sla_terms": sla_terms()})


def content_hash(definition: QualifiedLeadDefinition) -> str:
    text = json.dumps(signed_content(definition), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


SIDE_FIELDS = {
    SignatureSide.MARKETING: ("marketing_signed_by", "marketing_signed_at"),
    SignatureSide.SALES: ("sales_signed_by", "sales_signed_at"),
}
SIDE_NAMES = {SignatureSide.MARKETING: "marketing", SignatureSide.SALES: "sales manager"}


def _void(definition: QualifiedLeadDefinition, signatures: Any, *, by, reason: str) -> int:
    """Void these standing signatures and clear the definition's "signed by" fields for their
    sides (those fields show the standing signature of each side, or nothing)."""
    sides = set(signatures.values_list("side", flat=True))
    if not sides:
        return 0
    actor = by if getattr(by, "is_authenticated", False) else None
    count = signatures.update(voided_at=timezone.now(), voided_by=actor, void_reason=reason)
    fields = [name for side in sides for name in SIDE_FIELDS[SignatureSide(side)]]
    for name in fields:
        setattr(definition, name, None)
    QualifiedLeadDefinition.objects.filter(pk=definition.pk).update(**dict.fromkeys(fields))
    return count


def void_stale_signatures(definition: QualifiedLeadDefinition, *, by) -> int:
    """After an edit: void every standing signature whose hash is not the content's now (kept
    in the history as "voided by edit at ... by ..."). An edit that changed nothing signed
    voids nothing. Returns how many were voided."""
    current = content_hash(definition)
    stale = DefinitionSignature.objects.filter(definition=definition, voided_at__isnull=True).exclude(
        content_hash=current
    )
    return _void(definition, stale, by=by, reason=VoidReason.EDITED)


def missing_signatures(definition: QualifiedLeadDefinition, *, current_hash: str | None = None) -> list[str]:
    """The sides without a standing signature on the current content, in words."""
    current = current_hash or content_hash(definition)
    signed = set(
        DefinitionSignature.objects.filter(
            definition=definition, voided_at__isnull=True, content_hash=current
        ).values_list("side", flat=True)
    )
    return [SIDE_NAMES[side] for side in (SignatureSide.MARKETING, SignatureSide.SALES) if side not in signed]


def sign_definition(definition: QualifiedLeadDefinition, *, user) -> QualifiedLeadDefinition:
    """The calling user signs their side (marketing, or sales as a sales manager) of the
    draft's current content: the signature records the content hash it signed."""
    if definition.state != DefinitionState.DRAFT:
        raise DefinitionError(
            _("Definition v%(version)s is %(state)s; only drafts are signed.")
            % {"version": definition.version, "state": definition.get_state_display()},
            code="not_a_draft",
        )
    if permissions.has_role(user, permissions.MARKETING) or (
        user.is_superuser and definition.marketing_signed_by_id is None
    ):
        side = SignatureSide.MARKETING
    elif permissions.has_role(user, permissions.SALES_MANAGER) or user.is_superuser:
        side = SignatureSide.SALES
    else:
        raise DefinitionError(
            _("Only a marketing user or a sales manager signs a definition."), code="permission_denied"
        )
    now = timezone.now()
    with transaction.atomic():
        # Edits take the same row lock: the hash read here is the content being signed.
        QualifiedLeadDefinition.objects.select_for_update().filter(pk=definition.pk).exists()
        void_stale_signatures(definition, by=user)
        standing = DefinitionSignature.objects.filter(definition=definition, side=side, voided_at__isnull=True)
        _void(definition, standing, by=user, reason=VoidReason.SUPERSEDED)
        DefinitionSignature.objects.create(
            definition=definition, side=side, signer=user, content_hash=content_hash(definition), signed_at=now
        )
        by_field, at_field = SIDE_FIELDS[side]
        setattr(definition, by_field, user)
        setattr(definition, at_field, now)
        definition.save(update_fields=[by_field, at_field])
    return definition


def clone_definition(definition: QualifiedLeadDefinition, *, user) -> QualifiedLeadDefinition:
    """A new draft with the same rules and thresholds, unsigned."""
    data = definition_to_dict(definition)
    data["name"] = f"{definition.name} (copy)"
    data["notes"] = definition.notes
    return create_definition(data, user=user)


def import_definition(data: Mapping[str, Any], *, user=None) -> QualifiedLeadDefinition:
    return create_definition(data, user=user)
