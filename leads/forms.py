"""Forms of the browser pages. They validate and shape input; `leads.lifecycle` decides."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from .identity import IdentityError, clean_profiles, normalise_phone, split_profiles
from .lifecycle import BANT_KEYS, DISQUALIFY_REASONS, LOST_REASONS, RECYCLE_REASONS
from .lifecycle.table import REASON_LABELS
from .models import IDENTIFIER_FIELDS, WRITABLE_FIELDS, Lead, Stage, TeamMembership, TouchKind, TouchOutcome

RECYCLE_ORDER = ("unable_to_reach", "no_budget", "no_authority", "no_need", "bad_timing", "other")
DISQUALIFY_ORDER = ("inaccurate_data", "not_a_fit", "duplicate", "competitor", "spam")
assert set(RECYCLE_ORDER) == RECYCLE_REASONS and set(DISQUALIFY_ORDER) == DISQUALIFY_REASONS

RECYCLE_CHOICES = [(code, REASON_LABELS[code]) for code in RECYCLE_ORDER]
DISQUALIFY_CHOICES = [(code, REASON_LABELS[code]) for code in DISQUALIFY_ORDER]
# Grouped so the rep sees which reasons send the lead back to marketing and which end it.
REJECT_CHOICES = [
    ("", _("Choose a reason…")),
    (_("Recycle to marketing"), RECYCLE_CHOICES),
    (_("Disqualify"), DISQUALIFY_CHOICES),
]

NOTE_WIDGET = forms.TextInput(attrs={"placeholder": _("Note (optional)"), "maxlength": 2000})


class RejectForm(forms.Form):
    reason = forms.ChoiceField(choices=REJECT_CHOICES)
    note = forms.CharField(required=False, max_length=2000, widget=NOTE_WIDGET)


class RecycleForm(forms.Form):
    reason = forms.ChoiceField(choices=[("", _("Choose a reason…")), *RECYCLE_CHOICES])
    note = forms.CharField(required=False, max_length=2000, widget=NOTE_WIDGET)


class DisqualifyForm(forms.Form):
    reason = forms.ChoiceField(choices=[("", _("Choose a reason…")), *DISQUALIFY_CHOICES])
    note = forms.CharField(required=False, max_length=2000, widget=NOTE_WIDGET)


class TouchForm(forms.Form):
    kind = forms.ChoiceField(choices=TouchKind.choices)
    outcome = forms.ChoiceField(choices=TouchOutcome.choices)
    note = forms.CharField(required=False, max_length=2000, widget=NOTE_WIDGET)


YES_NO = [("yes", _("Yes")), ("no", _("No"))]
BANT_LABELS = (
    ("budget", _("Budget")),
    ("authority", _("Authority")),
    ("need", _("Need")),
    ("timeline", _("Timeline")),
)


class BantForm(forms.Form):
    """Budget, authority, need and timeline, each yes/no with a note; how many must be yes is
    the SLA policy's business, checked by `lifecycle.qualify`."""

    budget = forms.ChoiceField(label=_("Budget"), choices=YES_NO, widget=forms.RadioSelect)
    budget_note = forms.CharField(required=False, max_length=1000, widget=NOTE_WIDGET)
    authority = forms.ChoiceField(label=_("Authority"), choices=YES_NO, widget=forms.RadioSelect)
    authority_note = forms.CharField(required=False, max_length=1000, widget=NOTE_WIDGET)
    need = forms.ChoiceField(label=_("Need"), choices=YES_NO, widget=forms.RadioSelect)
    need_note = forms.CharField(required=False, max_length=1000, widget=NOTE_WIDGET)
    timeline = forms.ChoiceField(label=_("Timeline"), choices=YES_NO, widget=forms.RadioSelect)
    timeline_note = forms.CharField(required=False, max_length=1000, widget=NOTE_WIDGET)
    # Travels with the SQL to the account executive it is handed to.
    note = forms.CharField(
        required=False,
        max_length=2000,
        label=_("Hand-off note"),
        widget=forms.TextInput(attrs={"placeholder": _("Hand-off note for the account executive"), "maxlength": 2000}),
    )

    def bant(self) -> dict[str, dict[str, Any]]:
        data = self.cleaned_data
        return {key: {"value": data[key] == "yes", "note": data.get(f"{key}_note", "")} for key in BANT_KEYS}

    def rows(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        return [(self[key], self[f"{key}_note"]) for key in BANT_KEYS]


class PromoteForm(forms.Form):
    """A marketer's manual MQL promotion: the note saying why is required."""

    note = forms.CharField(
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": _("Why this lead is ready for sales"), "maxlength": 2000}),
    )


LOST_REASON_LABELS = {
    "price": _("Price"),
    "competitor": _("Went with a competitor"),
    "no_decision": _("No decision"),
    "timing": _("Timing"),
    "features": _("Missing features"),
    "other": _("Other"),
}
assert set(LOST_REASON_LABELS) == LOST_REASONS


class CloseForm(forms.Form):
    """Won or lost, with the deal's amount and, for a loss, why."""

    outcome = forms.ChoiceField(choices=[(Stage.WON, _("Won")), (Stage.LOST, _("Lost"))], label=_("Outcome"))
    amount = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=16,
        decimal_places=2,
        label=_("Amount"),
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "placeholder": "0.00"}),
    )
    reason = forms.ChoiceField(
        required=False,
        label=_("Lost reason"),
        choices=[("", _("Choose if lost…")), *LOST_REASON_LABELS.items()],
    )
    note = forms.CharField(required=False, max_length=2000, widget=NOTE_WIDGET)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("outcome") == Stage.LOST and not data.get("reason"):
            self.add_error("reason", _("Say why the deal was lost."))
        if data.get("outcome") == Stage.WON:
            data["reason"] = ""
        return data


class RepChoiceField(forms.ModelChoiceField):
    """A rep shown by full name and username."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.get_full_name() or obj.username} ({obj.username})"


class ReassignForm(forms.Form):
    """A manager's choice of new owner among the reps of the lead's team; empty = round-robin."""

    owner = RepChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label=_("Next rep in the rotation (round-robin)"),
    )
    note = forms.CharField(required=False, max_length=2000, widget=NOTE_WIDGET)

    def __init__(self, *args: Any, team_id: int | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        members = TeamMembership.objects.filter(user__is_active=True)
        if team_id is not None:
            members = members.filter(team_id=team_id)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)  # declared above
        owner.queryset = get_user_model().objects.filter(pk__in=members.values("user_id")).order_by("username")


class AwayForm(forms.Form):
    is_away = forms.TypedChoiceField(choices=[("1", _("Away")), ("0", _("Available"))], coerce=lambda v: v == "1")


class LeadIdentityForm(forms.ModelForm):
    """The lead form of the admin (the browser's way to enter a lead): a phone number stored in
    E.164, profile URLs one per line, and at least one of external id, e-mail or phone."""

    social_profiles = forms.CharField(
        label=_("Social profiles"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Profile URLs (LinkedIn, X, ...), one per line."),
    )

    class Meta:
        model = Lead
        fields = list(WRITABLE_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["social_profiles"] = "\n".join(self.instance.social_profiles or [])
        if "phone" in self.fields:
            self.fields["phone"].help_text = _("International (+44 20 7946 0000) or national in the lead's country.")

    def clean_social_profiles(self) -> list[str]:
        try:
            return clean_profiles(split_profiles(self.cleaned_data.get("social_profiles") or ""))
        except IdentityError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        phone = data.get("phone")
        if phone:
            try:
                data["phone"] = normalise_phone(phone, data.get("country") or "")
            except IdentityError as exc:
                self.add_error("phone", str(exc))
        if not any(data.get(name) for name in IDENTIFIER_FIELDS):
            raise forms.ValidationError(_("Give at least one of external id, e-mail or phone."))
        return data
