"""The admin's rule editor: the field offered from the lead columns, and the value typed as a
person writes it (`VP`, `100`, `US, CA`, `100, 1000`), not as JSON. The operator decides what
the text means; the model's clean() then checks it as the API does."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from . import definitions


def _number_or_text(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def typed_value(operator: str, text: str) -> Any:
    """The rule value for `operator` from what was typed. A JSON list (`["a", "b"]`) is still
    understood for `in` and `between`."""
    text = (text or "").strip()
    if operator == "is_empty" or text == "":
        return None
    if operator in ("in", "between"):
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                pass
        items = [item.strip() for item in text.split(",") if item.strip()]
        if operator == "between":
            return [_number_or_text(item) for item in items]
        return items
    if operator in ("gte", "lte", "equals"):
        return _number_or_text(text)
    return text  # contains, regex: text as typed


def shown_value(value: Any) -> str:
    """How a stored value reads in the editor (the inverse of `typed_value`)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class LeadFieldInput(forms.TextInput):
    """A text input offering the lead columns as suggestions (an attributes key may be typed)."""

    def render(self, name, value, attrs=None, renderer=None):
        field = super().render(name, value, {**(attrs or {}), "list": "lead-field-choices"}, renderer)
        options = format_html_join("", '<option value="{}">', ((c,) for c in definitions.LEAD_COLUMNS))
        return format_html('{}<datalist id="lead-field-choices">{}</datalist>', field, options)


class TypedValueRuleForm(forms.ModelForm):
    """A rule whose value (and, for behaviour rules, property value) is typed as text."""

    value_fields: tuple[tuple[str, str], ...] = (("value", "operator"),)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for value_name, _operator_name in self.value_fields:
            if value_name not in self.fields:
                continue
            self.fields[value_name] = forms.CharField(
                required=False,
                label=self.fields[value_name].label,
                help_text=_("As text: VP · 100 · US, CA (is one of) · 100, 1000 (between)."),
            )
            if self.instance.pk is not None:
                self.initial[value_name] = shown_value(getattr(self.instance, value_name))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for value_name, operator_name in self.value_fields:
            if value_name in cleaned:
                operator = cleaned.get(operator_name) or "equals"
                cleaned[value_name] = typed_value(operator, cleaned[value_name])
        return cleaned


class ConditionRuleForm(TypedValueRuleForm):
    """A fit or knock-out rule: the field is a lead column or a known attributes key, checked
    as the API checks it, so a typo is refused instead of never matching."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["field"].widget = LeadFieldInput()

    def clean_field(self) -> str:
        value = self.cleaned_data["field"]
        problem = definitions.unknown_field_problem(value)
        if problem:
            raise ValidationError(problem)
        return value


class BehaviorRuleForm(TypedValueRuleForm):
    value_fields = (("property_value", "property_operator"),)
