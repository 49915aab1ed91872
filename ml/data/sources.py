"""Data sources: run a parameterized query, get a DataFrame.

Queries use named parameters, ``:name`` (SQLAlchemy's style), whatever the
database. Values are always sent separately from the SQL text (or escaped by the
driver, for Postgres COPY), never pasted in by rtml.

- :class:`SqlAlchemySource`: any SQLAlchemy URL (SQLite, DuckDB, MySQL, Postgres).
- :class:`PostgresSource`: psycopg2 with a connection pool; bulk pulls stream
  ``COPY (query) TO STDOUT`` into a spool file that Arrow's CSV reader parses
  with the column types Postgres reports, several times faster than
  ``pandas.read_sql`` and without a Python object per value.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.psycopg2 import dialect as psycopg2_dialect
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from ml.data.urls import connection_error, create_engine, describe
from ml.errors import DataSourceError

Params = Mapping[str, Any]

# Postgres type OIDs -> the Arrow type their CSV text is parsed as; anything else stays text.
# Integers widen to int64, as pandas.read_sql gives them.
_PG_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int64(),
    23: pa.int64(),
    700: pa.float32(),
    701: pa.float64(),
    1700: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}


class Source(ABC):
    """A database rtml reads from."""

    def __init__(self, url: URL) -> None:
        self.url = url

    @property
    def identity(self) -> str:
        """What the data is, for cache keys: dialect, host, port, database (no credentials)."""
        url = self.url
        return f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"

    @abstractmethod
    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame: ...

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to close
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _query_error(self, exc: BaseException) -> DataSourceError:
        # pandas wraps SQLAlchemy's error, which wraps the driver's: report the driver's words.
        original: BaseException = exc
        while getattr(original, "orig", None) is None and original.__cause__ is not None:
            original = original.__cause__
        original = getattr(original, "orig", None) or original
        reason = next((line.strip() for line in str(original).splitlines() if line.strip()), "")
        return DataSourceError(
            f"query failed on {describe(self.url)}: {reason}",
            hint="check the table and column names in the model's query, "
            "and that the user may read them",
        )


class SqlAlchemySource(Source):
    def __init__(self, url: URL) -> None:
        super().__init__(url)
        self.engine = create_engine(url, pool_pre_ping=True)

    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        try:
            connection = self.engine.connect()
        except DBAPIError as exc:
            raise connection_error(self.url, exc) from exc
        with connection:
            try:
                return pd.read_sql_query(sa.text(sql), connection, params=dict(params or {}))
            except (DBAPIError, pd.errors.DatabaseError) as exc:
                raise self._query_error(exc) from exc

    def close(self) -> None:
        self.engine.dispose()


class PostgresSource(Source):
    """Postgres through psycopg2: pooled connections, COPY for bulk pulls."""

    def __init__(self, url: URL, pool_size: int = 4) -> None:
        super().__init__(url)
        import psycopg2.pool

        self._dialect = psycopg2_dialect()
        try:
            self._pool = psycopg2.pool.ThreadedConnectionPool(
                1,
                pool_size,
                dsn=url.set(drivername="postgresql").render_as_string(hide_password=False),
                connect_timeout=5,
            )
        except psycopg2.OperationalError as exc:
            raise connection_error(url, exc) from exc

    def _pyformat(self, sql: str) -> str:
        """``:name`` placeholders in psycopg2's ``%(name)s`` style (and literal % escaped)."""
        return str(sa.text(sql).compile(dialect=self._dialect))

    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        import psycopg2

        statement = self._pyformat(sql)
        values = dict(params or {})
        connection = self._pool.getconn()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT * FROM ({statement}) AS rtml_query LIMIT 0", values)
                columns = [(c.name, c.type_code) for c in cursor.description or ()]
                # COPY takes no bind parameters: psycopg2 escapes the values into the text.
                copy_sql = cursor.mogrify(statement, values).decode()
                with tempfile.TemporaryFile() as spool:
                    cursor.copy_expert(f"COPY ({copy_sql}) TO STDOUT WITH (FORMAT csv)", spool)
                    spool.seek(0)
                    table = _read_csv(spool, columns)
            connection.rollback()  # read-only: end the transaction the queries opened
        except psycopg2.Error as exc:
            connection.rollback()
            raise self._query_error(exc) from exc
        finally:
            self._pool.putconn(connection)
        return table.to_pandas()

    def close(self) -> None:
        self._pool.closeall()


def _read_csv(spool: Any, columns: list[tuple[str, int]]) -> pa.Table:
    names = [name for name, _ in columns]
    types = {name: _PG_TYPES.get(oid, pa.string()) for name, oid in columns}
    if not spool.read(1):  # no rows: Arrow refuses an empty CSV
        return pa.table({name: pa.array([], types[name]) for name in names})
    spool.seek(0)
    return pacsv.read_csv(
        spool,
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            null_values=[""],  # COPY writes NULL as an empty unquoted field...
            quoted_strings_can_be_null=False,  # ...and an empty string as ""
            true_values=["t"],
            false_values=["f"],
            strings_can_be_null=True,
        ),
    )


def open_source(url: URL) -> Source:
    """The fastest source rtml has for ``url``."""
    if url.get_backend_name() == "postgresql":
        return PostgresSource(url)
    return SqlAlchemySource(url)
