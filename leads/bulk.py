"""Bulk inserts without Django's per-value preparation, for the write paths that create
thousands of rows at once (the historical import, batch promotion, the history recorder).

`bulk_create` prepares every value through the field API and builds one placeholder per value:
for a 30-column lead that costs more than the database spends inserting it. On PostgreSQL
`insert_objects` sends one array per column instead (`INSERT ... SELECT * FROM unnest(...)
RETURNING id`); psycopg2 adapts lists of strings, numbers and datetimes in C. Elsewhere it is
`bulk_create`. Either way the objects get their primary keys, as from `bulk_create`.

Building the model instances can itself cost more than the insert (Django's keyword `__init__`
runs every field's default and descriptor): `insert_rows` and `update_rows` take plain tuples,
one per row, for the callers that have their values already (the import, the history recorder).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from django.db import connection, connections, models
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

BATCH_SIZE = 5000


def concrete_field(model: type[models.Model], name: str) -> models.Field:
    """`model._meta.get_field(name)` for a field with a column (get_field also finds reverse
    relations, which the functions here cannot take)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


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
        model._default_manager.bulk_create(objs, batch_size=batch_size, ignore_conflicts=ignore_conflicts)
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
        for obj, pk in zip(chunk, pks, strict=False):  # RETURNING follows the order of the unnested rows
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = connection.alias


def insert_columns(
    model: type[models.Model],
    fields: Sequence[models.Field],
    columns: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
    returning: models.Field | Sequence[models.Field] | None = None,
) -> list[Any]:
    """PostgreSQL: INSERT one row of `model` per position of `columns` (one list of values per
    field of `fields`, all as long), in one statement; the `returning` column of the rows
    inserted, in their order. With `ignore_conflicts`, rows that would break a unique
    constraint are skipped (and not returned). Several `returning` fields give tuples."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(_column(f)) for f in fields)
    arrays = ", ".join(f"%s::{_array_type(f)}" for f in fields)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT * FROM unnest({arrays})"
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    returned = [returning] if isinstance(returning, models.Field) else list(returning or [])
    if returned:
        sql += " RETURNING " + ", ".join(quote(_column(field)) for field in returned)
    params = [_array_param(field, values) for field, values in zip(fields, columns, strict=False)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if not returned:
            return []
        if isinstance(returning, models.Field):
            return [row[0] for row in cursor.fetchall()]
        return [tuple(row) for row in cursor.fetchall()]


def insert_rows(model: type[models.Model], fields: Sequence[models.Field], rows: Sequence[Sequence[Any]]) -> list[Any]:
    """INSERT one row of `model` per tuple of `rows` (the values of `fields`, in that order, as
    the model's attributes hold them); the new primary keys, in the order of `rows`. A field
    left out gets its default, `auto_now`/`auto_now_add` the current time, as `bulk_create` gives
    them (a callable default is called once for all the rows).
    On PostgreSQL `insert_columns` per batch; elsewhere `bulk_create` of instances built here."""
    if not rows:
        return []
    meta = model._meta
    given = {field.attname for field in fields}
    rest = [f for f in meta.concrete_fields if not f.primary_key and f.attname not in given]
    now = timezone.now()
    fill = [
        now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default() for f in rest
    ]
    if connection.vendor == "postgresql":
        pks: list[Any] = []
        for start in range(0, len(rows), BATCH_SIZE):
            columns: list[Sequence[Any]] = list(zip(*rows[start : start + BATCH_SIZE], strict=False))
            size = len(columns[0])
            columns.extend([value] * size for value in fill)
            pks.extend(insert_columns(model, [*fields, *rest], columns, returning=meta.pk))
        return pks
    names = [field.attname for field in (*fields, *rest)]
    objs = [model(**dict(zip(names, (*row, *fill), strict=False))) for row in rows]
    model._default_manager.bulk_create(objs, batch_size=BATCH_SIZE)
    return [obj.pk for obj in objs]


def update_rows(
    model: type[models.Model],
    fields: Sequence[models.Field],
    rows: Sequence[Sequence[Any]],
    *,
    batch_size: int = 1000,
) -> None:
    """UPDATE the rows of `model` given as tuples (primary key, then the values of `fields`),
    each with its own values.

    Django's bulk_update builds a CASE per column and row, which costs seconds per thousand rows;
    PostgreSQL takes one `UPDATE ... FROM unnest(<one array per column>)` per batch instead."""
    if not rows:
        return
    meta = model._meta
    if connection.vendor != "postgresql":
        objs = []
        for pk, *values in rows:
            obj = model(pk=pk)
            for field, value in zip(fields, values, strict=False):
                setattr(obj, field.attname, value)
            objs.append(obj)
        model._default_manager.bulk_update(objs, [field.name for field in fields], batch_size=batch_size)
        return
    quote = connection.ops.quote_name
    all_fields = [meta.pk, *fields]
    arrays = ", ".join(f"%s::{_array_type(field)}" for field in all_fields)
    names = ", ".join(quote(_column(field)) for field in all_fields)
    sets = ", ".join(f"{quote(_column(field))} = v.{quote(_column(field))}" for field in fields)
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {sets} FROM unnest({arrays}) AS v({names}) "
        f"WHERE t.{quote(_column(meta.pk))} = v.{quote(_column(meta.pk))}"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            columns = zip(*rows[start : start + batch_size], strict=False)
            cursor.execute(
                sql, [_array_param(field, values) for field, values in zip(all_fields, columns, strict=False)]
            )


def any_of(field: models.Field, values: Iterable[Any]) -> Q:
    """A filter: `field` (of the queried model) holds one of `values`; for look-ups by a key,
    where the column's index is the way in. Elsewhere than PostgreSQL, `__in`.

    On PostgreSQL one array parameter in its text form: a thousand keys as `__in` cost Django's
    preparation and psycopg2's adaptation of each. The array sits behind a scalar subquery, so
    the planner does not weigh a thousand index probes against a sequential scan: while a bulk
    load outruns the table's statistics it picks the scan, three times slower at 100,000 leads
    and growing with the table."""
    values = list(values)
    if connection.vendor != "postgresql":
        return Q(**{f"{field.name}__in": values})
    quote = connection.ops.quote_name
    column = f"{quote(field.model._meta.db_table)}.{quote(_column(field))}"
    array = _array_type(field)
    condition = RawSQL(
        f"{column} = ANY((SELECT %s::{array})::{array})",
        [_array_param(field, values)],
        output_field=models.BooleanField(),
    )
    return Q(condition)


def _array_type(field: models.Field) -> str:
    """The column's type without its length or precision: an explicit cast to varchar(100)
    would silently cut a longer value, where the INSERT itself refuses it."""
    if isinstance(field, models.JSONField):
        return "jsonb[]"
    db_type = field.db_type(connection)
    assert db_type is not None  # None only for a field without a column (many-to-many)
    return re.sub(r"\(.*?\)", "", db_type).strip() + "[]"


def _column(field: models.Field) -> str:
    """`field.column`, which is None only for a field without a column (many-to-many); the
    fields here are concrete."""
    assert field.column is not None
    return field.column


def _array_param(field: models.Field, values: Sequence[Any]) -> str | list[Any]:
    """One column's values as the parameter of its array: PostgreSQL's text form of the array
    where every value is of a type written here, else the list for psycopg2 to adapt.

    psycopg2 adapts a list element by element, about 2 µs a string and 6 an aware datetime: for
    a thousand rows of thirty columns that cost as much as the INSERT itself. One string of the
    whole array is one adaptation, parsed by the server in C."""
    values = _json_column(field, list(values))
    if not values:
        return values
    first = values[0]
    if values.count(first) == len(values):  # one value throughout: a default, mostly
        element = _array_element(first)
        return values if element is None else "{" + ",".join([element] * len(values)) + "}"
    kinds = set(map(type, values))
    if kinds == {str}:
        text = '","'.join(values)
        if "\\" in text or '"' in text:
            text = '","'.join([_escape(value) for value in values])
        return '{"' + text + '"}'
    if kinds <= {int, type(None)}:
        return "{" + ",".join(["NULL" if value is None else str(value) for value in values]) + "}"
    elements = []
    for value in values:
        element = _array_element(value)
        if element is None:
            return values
        elements.append(element)
    return "{" + ",".join(elements) + "}"


def _array_element(value: Any) -> str | None:
    """`value` as an element of an array's text form; None for a type left to psycopg2 (bool,
    infinities, anything unusual)."""
    kind = type(value)
    if isinstance(value, str):
        return '"' + _escape(value) + '"'
    if value is None:
        return "NULL"
    if kind is int:
        return str(value)
    if kind is dt.datetime or kind is dt.date:
        return '"' + value.isoformat() + '"'
    if kind is float and math.isfinite(value):
        return repr(value)
    if kind is Decimal and value.is_finite():
        return str(value)
    return None


def _escape(text: str) -> str:
    """Inside an array element's double quotes, a backslash or a double quote is escaped."""
    return str.replace(str.replace(text, "\\", "\\\\"), '"', '\\"')


def _json_column(field: models.Field, values: list[Any]) -> list[Any]:
    """A JSON field's values as JSON text (a jsonb[] parameter); other fields' as they are."""
    if isinstance(field, models.JSONField):
        if values and all(value is values[0] for value in values):  # one default object: encode it once
            return [None if values[0] is None else json.dumps(values[0], cls=field.encoder)] * len(values)
        return [None if value is None else json.dumps(value, cls=field.encoder) for value in values]
    return values


def ids_clause(ids: Sequence[int]) -> tuple[str, list[Any]]:
    """`id` among `ids`: one array parameter on PostgreSQL (5,000 placeholders cost parse time)."""
    if connection.vendor == "postgresql":
        return "id = ANY(%s)", [list(ids)]
    return f"id IN ({', '.join(['%s'] * len(ids))})", list(ids)


def id_set(ids: Sequence[int]) -> RawSQL:
    """`ids` as a subquery for an ``__in`` filter. The querysets the batch signals carry are
    built for every batch and read only when someone subscribes; a plain list would have Django
    prepare 5,000 values for each of them regardless."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (list(ids),))
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(list(ids)),))


def rows_clause(rows: Sequence[Mapping[str, Any]]) -> tuple[str, list[Any]]:
    """The claimed `rows` again: by ctid on PostgreSQL (a TID scan reads each heap page once, no
    index descent; the rows are locked, so their addresses hold until the batch's UPDATE), by id
    elsewhere. Only for statements that run before the rows are updated.

    The addresses go as one array literal: psycopg2 quotes a list of 5,000 strings item by item
    (7 ms, with the GIL held, for each of a batch's three statements); a ctid's text, "(page,n)",
    needs no escaping inside double quotes."""
    if rows and "_tid" in rows[0]:
        return "ctid = ANY(%s::tid[])", ['{"' + '","'.join([row["_tid"] for row in rows]) + '"}']
    return ids_clause([row["id"] for row in rows])


def in_workers(
    items: list[Any],
    work: Callable[[Any], Any],
    *,
    workers: int,
    on_result: Callable[[Any], None],
    name: str = "worker",
) -> None:
    """`on_result(work(item))` for every item, on `workers` threads, each with its own database
    connection (closed when it finishes); `on_result` calls are serialised. The first error
    stops the workers from taking new items and is raised once they have finished.

    For set-based work that is mostly the database's own (index upkeep of a rescore or a sweep
    batch), which one connection does on one core: two connections use both."""
    if workers <= 1 or len(items) < 2:
        for item in items:
            on_result(work(item))
        return
    lock = threading.Lock()
    pending = iter(items)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            while not failed:
                with lock:
                    item = next(pending, _DONE)
                if item is _DONE:
                    return
                result = work(item)
                with lock:
                    on_result(result)
        except BaseException as exc:
            failed.append(exc)
            raise
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix=name) as pool:
        futures = [pool.submit(run) for _ in range(min(workers, len(items)))]
    for future in futures:
        future.result()


_DONE = object()
