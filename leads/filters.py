"""Filters of the API's lead list and the CSV export (SPEC section 6), and of the browser's
lead lists (the inbox and "all leads")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import F, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scoring.engine import GRADE_CUTOFFS

from .models import CLOCKED_STAGES, Lead, Stage, Team
from .permissions import ACCOUNT_EXECUTIVE, SALES_REP


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


# --- The browser's lead lists: the inbox and "all leads" ----------------------------------------

# Searched with ILIKE '%word%': on PostgreSQL each column has a pg_trgm GIN index (migration
# 0014), so a word is a few bitmap index scans, not a read of every lead.
SEARCH_FIELDS = ("first_name", "last_name", "company", "email", "external_id")
MAX_SEARCH_WORDS = 5


def search_fields() -> tuple[str, ...]:
    """The searched columns; `phone` joins them on a site whose leads have one."""
    names = {f.name for f in Lead._meta.get_fields()}
    return SEARCH_FIELDS + tuple(name for name in ("phone",) if name in names)


def search_q(text: str) -> Q:
    """Every word must match one of the searched columns (so "ana acme" finds Ana at Acme)."""
    condition = Q()
    fields = search_fields()
    for word in text.split()[:MAX_SEARCH_WORDS]:
        any_field = Q()
        for name in fields:
            any_field |= Q(**{f"{name}__icontains": word})
        condition &= any_field
    return condition


class SlaState(models.TextChoices):
    DUE_TODAY = "due_today", _("Due today")
    BREACHED = "breached", _("Breached")
    ON_TIME = "on_time", _("On time")


GRADE_CHOICES = [(grade, _("Grade %(grade)s") % {"grade": grade}) for grade in ("A", "B", "C", "D")]
SORTS = (
    ("sla_due_at", "sla"),
    ("last_name", "name"),
    ("company", "company"),
    ("fit_score", "fit"),
    ("behavior_score", "behavior"),
    ("stage_entered_at", "in_stage"),
    ("created_at", "created"),
)


def grade_range(grade: str) -> tuple[float | None, float | None]:
    """The fit scores [low, high) of a grade, from the engine's cutoffs (one source of truth)."""
    bounds = [(cutoff, name) for cutoff, name in GRADE_CUTOFFS]
    for index, (cutoff, name) in enumerate(bounds):
        if name == grade:
            return cutoff, bounds[index - 1][0] if index else None
    return None, bounds[-1][0]  # the lowest grade: below every cutoff


def _user_choices(request: Any = None) -> QuerySet[Any]:
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[SALES_REP, ACCOUNT_EXECUTIVE])
        .distinct()
        .order_by("username")
    )


class LeadListFilter(django_filters.FilterSet):
    """Search, filters and sort of the inbox and the "all leads" list; the query string is the
    page's state, so a filtered list is a URL to share and the back button returns to it."""

    q = django_filters.CharFilter(method="filter_search", label=_("Search"))
    stage = django_filters.ChoiceFilter(choices=Stage.choices, label=_("Stage"), empty_label=_("Any stage"))
    owner = django_filters.ModelChoiceFilter(
        queryset=_user_choices,
        label=_("Owner"),
        empty_label=_("Anyone"),
        null_label=_("Unassigned"),
        to_field_name="username",
    )
    team = django_filters.ModelChoiceFilter(queryset=Team.objects.all(), label=_("Team"), empty_label=_("Any team"))
    source = django_filters.ChoiceFilter(choices=[], label=_("Source"), empty_label=_("Any source"))
    country = django_filters.CharFilter(method="filter_country", label=_("Country"))
    grade = django_filters.ChoiceFilter(
        choices=GRADE_CHOICES, method="filter_grade", label=_("Fit grade"), empty_label=_("Any grade")
    )
    sla = django_filters.ChoiceFilter(
        choices=SlaState.choices, method="filter_sla", label=_("SLA"), empty_label=_("Any SLA state")
    )
    sort = django_filters.OrderingFilter(fields=SORTS, label=_("Sort"))

    class Meta:
        model = Lead
        fields: list[str] = []

    def __init__(
        self,
        *args: Any,
        sources: list[str] | None = None,
        stages: tuple[str, ...] | None = None,
        now: dt.datetime | None = None,
        without: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        for name in without:  # filters this user's scope makes pointless (a rep's "owner")
            self.filters.pop(name, None)
        self.now = now or timezone.now()
        self.filters["source"].extra["choices"] = [(s, s) for s in (sources or [])]
        if stages is not None:  # the inbox offers only the stages it lists
            self.filters["stage"].extra["choices"] = [(s, Stage(s).label) for s in stages]
        self.form.fields["q"].widget.attrs.update(
            {"type": "search", "placeholder": _("Name, company, e-mail, id…"), "autocomplete": "off"}
        )
        self.form.fields["country"].widget.attrs.update({"placeholder": "US", "maxlength": 2, "size": 3})

    @property
    def refined(self) -> bool:
        """Whether anything beyond the default view was asked for (sort aside)."""
        return self.is_bound and any(self.data.get(name) for name in self.filters if name != "sort")

    @property
    def search_text(self) -> str:
        return str(self.data.get("q") or "").strip() if self.is_bound else ""

    @property
    def sorted(self) -> bool:
        return self.is_bound and bool(self.data.get("sort"))

    def refine(self, queryset: QuerySet[Lead]) -> QuerySet[Lead]:
        """The search and filters without the sort: the inbox keeps its own merge order."""
        if not (self.is_bound and self.is_valid()):
            return queryset
        for name, value in self.form.cleaned_data.items():
            if name != "sort":
                queryset = self.filters[name].filter(queryset, value)
        return queryset

    def ordering(self) -> list[Any]:
        """The chosen sort as order_by() terms (leads without a running clock sort last)."""
        if not (self.is_bound and self.is_valid()):
            return []
        by_param = {param: field for field, param in SORTS}
        terms: list[Any] = []
        for value in self.form.cleaned_data.get("sort") or []:
            field = by_param.get(value.lstrip("-"))
            if field is not None:
                expression = F(field)
                desc = value.startswith("-")
                terms.append(expression.desc(nulls_last=True) if desc else expression.asc(nulls_last=True))
        return terms

    def sort_links(self, query: QueryDict) -> dict[str, dict[str, str]]:
        """Per sortable column: the URL query that sorts by it (toggling the direction when it is
        the current sort) and its current direction, for the table headers."""
        current = query.get("sort", "")
        links: dict[str, dict[str, str]] = {}
        for _field, param in SORTS:
            state = "asc" if current == param else "desc" if current == f"-{param}" else ""
            target = query.copy()
            target.pop("page", None)
            target["sort"] = f"-{param}" if state == "asc" else param
            links[param] = {"query": target.urlencode(), "state": state}
        return links

    def filter_search(self, queryset: QuerySet[Lead], name: str, value: str) -> QuerySet[Lead]:
        return queryset.filter(search_q(value)) if value.strip() else queryset

    def filter_country(self, queryset: QuerySet[Lead], name: str, value: str) -> QuerySet[Lead]:
        return queryset.filter(country=value.strip().upper()) if value.strip() else queryset

    def filter_grade(self, queryset: QuerySet[Lead], name: str, value: str) -> QuerySet[Lead]:
        low, high = grade_range(value)
        if low is not None:
            queryset = queryset.filter(fit_score__gte=low)
        if high is not None:
            queryset = queryset.filter(fit_score__lt=high)
        return queryset

    def filter_sla(self, queryset: QuerySet[Lead], name: str, value: str) -> QuerySet[Lead]:
        running = queryset.filter(stage__in=CLOCKED_STAGES, sla_due_at__isnull=False)
        if value == SlaState.BREACHED:
            return running.filter(sla_due_at__lt=self.now)
        if value == SlaState.ON_TIME:
            return running.filter(sla_due_at__gte=self.now)
        if value == SlaState.DUE_TODAY:
            end_of_day = timezone.localtime(self.now).replace(hour=0, minute=0, second=0, microsecond=0)
            return running.filter(sla_due_at__gte=self.now, sla_due_at__lt=end_of_day + dt.timedelta(days=1))
        return queryset
