"""Filters of the lead list and the CSV export (SPEC section 6)."""

from __future__ import annotations

import django_filters

from .models import Lead, Stage


class LeadFilter(django_filters.FilterSet):
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    owner = django_filters.CharFilter(field_name="owner__username", help_text="Owner's username.")
    source = django_filters.CharFilter()
    email = django_filters.CharFilter(lookup_expr="iexact")
    external_id = django_filters.CharFilter()
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    min_fit = django_filters.NumberFilter(field_name="fit_score", lookup_expr="gte")
    min_behavior = django_filters.NumberFilter(field_name="behavior_score", lookup_expr="gte")

    class Meta:
        model = Lead
        fields = [
            "stage",
            "owner",
            "source",
            "email",
            "external_id",
            "updated_since",
            "min_fit",
            "min_behavior",
        ]
