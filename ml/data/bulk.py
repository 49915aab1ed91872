"""Load DataFrames into database tables fast, replacing them in one transaction.

Postgres gets ``COPY ... FROM STDIN`` (the fastest path psycopg2 offers), DuckDB
inserts straight from the DataFrame (its executemany manages ~2.5k rows/s); every
other SQLAlchemy dialect gets the driver's ``executemany``. Tables are dropped,
created, filled and indexed inside one transaction, so on databases with
transactional DDL (Postgres, SQLite, DuckDB) a failure or Ctrl-C leaves the old
tables untouched, never half-written ones.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


class BulkLoader:
    """Appends frames to tables inside the open transaction of :func:`replace_tables`."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        # The raw DB-API cursor, inside SQLAlchemy's transaction: COPY and executemany need it.
        self._cursor: Any = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        self._dialect = connection.dialect.name
        self.rows_written: dict[str, int] = {}

    def append(self, table: sa.Table, frame: pd.DataFrame) -> None:
        columns = [c.name for c in table.columns]
        frame = frame[columns]
        if self._dialect == "postgresql":
            self._copy(table, frame)
        elif self._dialect == "duckdb":
            self._insert_frame(table, frame)
        else:
            self._executemany(table, frame)
        self.rows_written[table.name] = self.rows_written.get(table.name, 0) + len(frame)

    def _copy(self, table: sa.Table, frame: pd.DataFrame) -> None:
        buffer = io.StringIO()
        # CSV: an unquoted empty field is NULL, so missing values need no special casing.
        frame.to_csv(buffer, index=False, header=False, date_format=TIMESTAMP_FORMAT)
        buffer.seek(0)
        names = ", ".join(_quote(self._connection, c) for c in frame.columns)
        sql = f"COPY {_quote(self._connection, table.name)} ({names}) FROM STDIN WITH (FORMAT csv)"
        self._cursor.copy_expert(sql, buffer)

    def _insert_frame(self, table: sa.Table, frame: pd.DataFrame) -> None:
        # DuckDB reads a registered DataFrame in place (columnar, no Python row loop).
        self._cursor.register("rtml_bulk_frame", frame)
        try:
            names = ", ".join(_quote(self._connection, c) for c in frame.columns)
            self._cursor.execute(
                f"INSERT INTO {_quote(self._connection, table.name)} ({names}) "
                f"SELECT {names} FROM rtml_bulk_frame"
            )
        finally:
            self._cursor.unregister("rtml_bulk_frame")

    def _executemany(self, table: sa.Table, frame: pd.DataFrame) -> None:
        names = ", ".join(_quote(self._connection, c) for c in frame.columns)
        marks = ", ".join(_placeholders(self._connection.dialect.paramstyle, len(frame.columns)))
        sql = f"INSERT INTO {_quote(self._connection, table.name)} ({names}) VALUES ({marks})"
        self._cursor.executemany(sql, _python_rows(frame))


@contextmanager
def replace_tables(engine: Engine, tables: Sequence[sa.Table]) -> Iterator[BulkLoader]:
    """Drop and recreate ``tables``, yield a loader for their rows, then index and commit."""
    with engine.begin() as connection:
        metadata_order = sorted(tables, key=lambda t: t.name)
        for table in metadata_order:
            table.drop(connection, checkfirst=True)
        for table in metadata_order:
            # Indexes are built after the load: much faster than maintaining them per row.
            connection.execute(sa.schema.CreateTable(table))
        loader = BulkLoader(connection)
        yield loader
        for table in metadata_order:
            for index in table.indexes:
                index.create(connection)


def _python_rows(frame: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """Rows of plain Python values: None for missing, text for timestamps."""
    converted = {}
    for name, column in frame.items():
        if pd.api.types.is_datetime64_any_dtype(column):
            column = column.dt.strftime(TIMESTAMP_FORMAT)
        converted[name] = column.astype(object).where(column.notna(), None)
    return pd.DataFrame(converted).itertuples(index=False, name=None)


def _placeholders(paramstyle: str, count: int) -> list[str]:
    """Positional placeholders in the driver's style (rows are passed as tuples)."""
    if paramstyle == "qmark":
        return ["?"] * count
    if paramstyle == "numeric":
        return [f":{i + 1}" for i in range(count)]
    if paramstyle == "numeric_dollar":  # DuckDB
        return [f"${i + 1}" for i in range(count)]
    if paramstyle in ("format", "pyformat"):  # pyformat drivers accept plain %s too
        return ["%s"] * count
    raise ValueError(f"unsupported DB-API paramstyle {paramstyle!r}")


def _quote(connection: Connection, name: object) -> str:
    return connection.dialect.identifier_preparer.quote(str(name))
