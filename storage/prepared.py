"""Hot statements compiled to SQL once, run many times with new parameters.

For a small query Peewee spends most of its time building the SQL text and
then a model instance per row. The statements every request makes keep the
text of their query; reads hand back plain rows (named tuples, field values
converted as the model would), so a request pays for the database and
little else.
"""

from collections import namedtuple
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from peewee import BooleanField, DateField, DateTimeField, Field, Model, Select, chunked

from storage.database import database

_CONVERTED = (DateField, DateTimeField, BooleanField)


def row_type(model: type[Model]) -> type:
    """A named tuple with the model's field names: what a prepared read returns."""
    return namedtuple(f"{model.__name__}Row", [field.name for field in model._meta.sorted_fields])


class PreparedSelect:
    """A `Model.select()` (every column, in model order), compiled once.

    `query` is built with placeholder values; `run` binds new ones in the
    order they appear in the SQL.
    """

    def __init__(self, query: Select, row: type) -> None:
        self.sql, _ = query.sql()
        self.row = row
        # Only dates, times and booleans differ between the driver and Python.
        self.converters: list[tuple[int, Callable[[Any], Any]]] = [
            (index, field.python_value)
            for index, field in enumerate(query.model._meta.sorted_fields)
            if isinstance(field, _CONVERTED)
        ]

    def run(self, *params: Any) -> list:
        rows = database.execute_sql(self.sql, params).fetchall()
        if self.converters:
            rows = [list(found) for found in rows]
            for found in rows:
                for index, convert in self.converters:
                    found[index] = convert(found[index])
        return [self.row._make(found) for found in rows]


class PreparedScalar:
    """A SELECT of one value (a count), compiled once."""

    def __init__(self, query: Select) -> None:
        self.sql, _ = query.sql()

    def run(self, *params: Any) -> Any:
        return database.execute_sql(self.sql, params).fetchone()[0]


class PreparedInsert:
    """A multi-row INSERT of one model's rows, compiled once per row count.

    `fields` must name every column without a database default: Peewee's
    Python-side defaults are not applied here.

    Peewee builds an `insert_many` statement value by value; for a thousand
    items that is most of a submit's time. This keeps the statement text for
    each chunk size and binds the flattened values.
    """

    def __init__(self, model: type[Model], fields: list[Field], rows_per_statement: int) -> None:
        self.model = model
        self.fields = fields
        self.rows_per_statement = rows_per_statement
        self.converters = [
            (index, field.db_value)
            for index, field in enumerate(fields)
            if isinstance(field, _CONVERTED)
        ]
        self._statements: dict[int, str] = {}

    def _statement(self, rows: int) -> str:
        if rows not in self._statements:
            columns = ", ".join(f'"{field.column_name}"' for field in self.fields)
            row = "(" + ", ".join([database.param] * len(self.fields)) + ")"
            self._statements[rows] = (
                f'INSERT INTO "{self.model._meta.table_name}" ({columns}) VALUES '
                + ", ".join([row] * rows)
            )
        return self._statements[rows]

    def run(self, rows: Iterable[Sequence[Any]]) -> None:
        for chunk in chunked(rows, self.rows_per_statement):
            values = []
            for row in chunk:
                row = list(row)
                for index, convert in self.converters:
                    row[index] = convert(row[index])
                values.extend(row)
            database.execute_sql(self._statement(len(chunk)), values)
