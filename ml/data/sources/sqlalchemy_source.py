"""Any database with a SQLAlchemy dialect: SQLite (the embedded default), DuckDB, MySQL."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError

from ml.data.sources.base import Columns, Params, Source, as_columns, standard_dtypes
from ml.data.urls import FILE_DATABASES, connection_error, create_engine
from ml.errors import DataSourceUnavailable

# How SQLAlchemy and rtml write timestamps into SQLite, which stores them as text.
_SQLITE_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$")


class SqlAlchemySource(Source):
    def __init__(self, url: URL) -> None:
        super().__init__(url)
        self.engine = create_engine(url, pool_pre_ping=True)

    @property
    def identity(self) -> str:
        """For a database file (SQLite, DuckDB): its absolute path, size and modification time.

        Regenerating or editing an embedded database changes what its rows are, so cached
        query results from the old file must not be reused.
        """
        database = self.url.database
        if (
            self.url.get_backend_name() not in FILE_DATABASES
            or not database
            or database == ":memory:"
        ):
            return super().identity
        path = Path(database).resolve()
        try:
            stat = path.stat()
            version = f"{stat.st_size}@{stat.st_mtime_ns}"
        except FileNotFoundError:
            version = "missing"
        return f"{self.url.get_backend_name()}://{path}#{version}"

    def _connect(self) -> sa.Connection:
        try:
            return self.engine.connect()
        except DBAPIError as exc:
            raise connection_error(self.url, exc) from exc

    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        with self._connect() as connection:
            try:
                frame = pd.read_sql_query(sa.text(sql), connection, params=dict(params or {}))
            except (DBAPIError, pd.errors.DatabaseError) as exc:
                raise self._query_error(exc) from exc
        if self.url.get_backend_name() == "sqlite":
            _parse_sqlite_timestamps(frame)
        return standard_dtypes(frame)

    def rows(self, sql: str, params: Params | None = None) -> Columns:
        with self._connect() as connection:
            try:
                result = connection.execute(sa.text(sql), dict(params or {}))
                return as_columns(list(result.keys()), [tuple(row) for row in result])
            except DBAPIError as exc:
                error = self._query_error(exc)
                if isinstance(exc, OperationalError):  # locked, unreachable: may pass
                    raise DataSourceUnavailable(error.message, hint=error.hint) from exc
                raise error from exc

    def close(self) -> None:
        self.engine.dispose()


def _parse_sqlite_timestamps(frame: pd.DataFrame) -> None:
    """Turn text columns that hold only timestamps into datetime64, as other databases return.

    SQLite has no timestamp type; without this the same query would give text on SQLite
    and datetimes on Postgres, and time-window logic would compare strings.
    """
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind not in "OT" and not pd.api.types.is_string_dtype(column):
            continue
        values = column.dropna()
        if values.empty or not values.astype(str).str.fullmatch(_SQLITE_TIMESTAMP).all():
            continue
        frame[name] = pd.to_datetime(column, format="ISO8601")
