"""Bulk inserts without Django's per-value preparation, for the write paths that create
thousands of rows at once (the historical import, batch promotion, the history recorder).

`bulk_create` prepares every value through the field API and builds one placeholder per value:
for a 30-column lead that costs more than the database spends inserting it. On PostgreSQL
`insert_objects` sends one array per column instead (`INSERT ... SELECT * FROM unnest(...)
RETURNING id`); psycopg2 adapts lists of strings, numbers and datetimes in C. Elsewhere it is
`bulk_create`. Either way the objects get their primary keys, as from `bulk_create`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from django.db import connection, models
from django.utils import timezone

BATCH_SIZE = 5000


def insert_objects(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    batch_size: int = BATCH_SIZE,
    ignore_conflicts: bool = False,
) -> None:
    """INSERT `objs` (new instances of `model`, which has an auto primary key) and set their pks.
    Field defaults are those the instances were built with; `auto_now`/`auto_now_add` fields get
    the current time, as `bulk_create` gives them. With `ignore_conflicts`, rows that would break
    a unique constraint are skipped and, as with `bulk_create`, no pk is set."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=batch_size, ignore_conflicts=ignore_conflicts)
        return
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    now = timezone.now()
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            for obj in objs:
                setattr(obj, field.attname, now)
    for start in range(0, len(objs), batch_size):
        chunk = objs[start : start + batch_size]
        pks = insert_columns(
            model,
            fields,
            [[getattr(obj, field.attname) for obj in chunk] for field in fields],
            ignore_conflicts=ignore_conflicts,
            returning=None if ignore_conflicts else meta.pk,
        )
        for obj, pk in zip(chunk, pks):  # RETURNING follows the order of the unnested rows
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = connection.alias


def insert_columns(
    model: type[models.Model],
    fields: Sequence[models.Field],
    columns: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
    returning: models.Field | None = None,
) -> list[Any]:
    """PostgreSQL: INSERT one row of `model` per position of `columns` (one list of values per
    field of `fields`, all as long), in one statement; the `returning` column of the rows
    inserted, in their order. With `ignore_conflicts`, rows that would break a unique
    constraint are skipped (and not returned)."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in fields)
    arrays = ", ".join(f"%s::{_array_type(f)}" for f in fields)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT * FROM unnest({arrays})"
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning is not None:
        sql += f" RETURNING {quote(returning.column)}"
    params = [_json_column(field, list(values)) for field, values in zip(fields, columns)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()] if returning is not None else []


def _array_type(field: models.Field) -> str:
    """The column's type without its length or precision: an explicit cast to varchar(100)
    would silently cut a longer value, where the INSERT itself refuses it."""
    if isinstance(field, models.JSONField):
        return "jsonb[]"
    return re.sub(r"\(.*?\)", "", field.db_type(connection)).strip() + "[]"


def _json_column(field: models.Field, values: list[Any]) -> list[Any]:
    """A JSON field's values as JSON text (a jsonb[] parameter); other fields' as they are."""
    if isinstance(field, models.JSONField):
        return [None if value is None else json.dumps(value, cls=field.encoder) for value in values]
    return values
