"""Writing rows through a plain DBAPI cursor (provisioning's first rows, no engine needed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql as pg_dialects
from sqlalchemy.dialects import sqlite as sqlite_dialects
from sqlalchemy.engine import Dialect

PG_DIALECT = pg_dialects.psycopg2.dialect()
SQLITE_DIALECT = sqlite_dialects.pysqlite.dialect(paramstyle="named")


def insert_row(cursor: Any, table: Table, values: dict[str, Any], dialect: Dialect) -> None:
    """Insert one row through a plain DBAPI cursor as the ORM would: Python-side column
    defaults filled in, values passed through the column types' bind processors."""
    row = dict(values)
    for column in table.columns:
        default = column.default
        if column.key in row or default is None:
            continue
        if default.is_scalar:
            row[column.key] = default.arg  # type: ignore[attr-defined]
        elif default.is_callable:
            row[column.key] = default.arg(None)  # type: ignore[attr-defined]
    compiled = insert(table).values(row).compile(dialect=dialect)
    params = compiled.construct_params()
    for key, bind in compiled.binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None and key in params:
            params[key] = processor(params[key])
    cursor.execute(str(compiled), params)
