"""Postgres through psycopg2, with a connection pool.

Bulk pulls stream ``COPY (query) TO STDOUT`` into a spool file that Arrow's CSV
reader parses with the column types Postgres reports: several times faster than
``pandas.read_sql``, without a Python object per value, and the rows wait on disk
rather than in memory while they arrive. Serving's small queries use plain
``execute`` on a pooled connection.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.psycopg2 import dialect as psycopg2_dialect
from sqlalchemy.engine import URL
from tqdm.auto import tqdm

from ml.data.sources.base import Columns, Params, Source, as_columns, standard_dtypes
from ml.data.urls import CONNECT_TIMEOUT_S, connection_error
from ml.errors import DataSourceError, DataSourceUnavailable, QueryTimeout, QueryValueError

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


class PostgresSource(Source):
    """Postgres through psycopg2: pooled connections, COPY for bulk pulls."""

    def __init__(
        self,
        url: URL,
        pool_size: int = 4,
        progress: bool = False,
        *,
        statement_timeout_ms: int | None = None,
        lazy: bool = False,
    ) -> None:
        """``statement_timeout_ms``: Postgres cancels any longer query (serving's bound).
        ``lazy``: connect on first use, not now (a service starts while its database is down).
        """
        super().__init__(url)
        self.progress = progress  # a byte counter while bulk pulls stream in
        import psycopg2.pool

        self._dialect = psycopg2_dialect()
        self._slots = threading.BoundedSemaphore(pool_size)
        options = {}
        if statement_timeout_ms is not None:
            options["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
        try:
            self._pool = psycopg2.pool.ThreadedConnectionPool(
                0 if lazy else 1,
                pool_size,
                dsn=url.set(drivername="postgresql").render_as_string(hide_password=False),
                connect_timeout=CONNECT_TIMEOUT_S,
                **options,
            )
        except psycopg2.OperationalError as exc:
            raise connection_error(url, exc) from exc
        # psycopg2's pool keeps only ``minconn`` idle connections and closes the rest when
        # they are returned; keep up to the pool size open, so requests reuse connections.
        self._pool.minconn = pool_size

    def _pyformat(self, sql: str) -> str:
        """``:name`` placeholders in psycopg2's ``%(name)s`` style (and literal % escaped)."""
        return str(sa.text(sql).compile(dialect=self._dialect))

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor on a pooled connection; the read-only transaction ends with the block.

        Threads beyond the pool size wait for a connection (psycopg2's pool would raise).
        """
        import psycopg2

        with self._slots:
            try:
                connection = self._pool.getconn()
            except psycopg2.Error as exc:  # cannot connect, or the pool is exhausted
                raise connection_error(self.url, exc) from exc
            try:
                with connection.cursor() as cursor:
                    yield cursor
            except psycopg2.Error as exc:
                raise self._classified(exc) from exc
            finally:
                if not connection.closed:
                    try:
                        connection.rollback()
                    except psycopg2.Error:
                        connection.close()  # broken: the pool replaces it
                # A connection the server dropped is closed here and replaced on the next getconn.
                self._pool.putconn(connection, close=bool(connection.closed))

    def _classified(self, exc: Exception) -> DataSourceError:
        """The driver's error as what the caller can do about it (by SQLSTATE class)."""
        import psycopg2
        import psycopg2.errors

        code = getattr(exc, "pgcode", None) or ""
        error = self._query_error(exc)
        if isinstance(exc, psycopg2.errors.QueryCanceled):
            return QueryTimeout(error.message, hint="the query ran past its statement timeout")
        if code.startswith("22") or code in ("42883", "42804"):  # a bound value of a wrong type
            # Only the driver's one-line reason: this one may reach an HTTP client.
            reason = getattr(getattr(exc, "diag", None), "message_primary", None)
            return QueryValueError(reason or "invalid value", hint="check the parameter's type")
        if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) or code[:2] in (
            "08",  # connection exception
            "53",  # insufficient resources
            "57",  # operator intervention (shutdown, cancel)
        ):
            return DataSourceUnavailable(error.message, hint="retry when the database is back")
        return error  # the query itself is wrong: not worth retrying

    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        statement = self._pyformat(sql)
        values = dict(params or {})
        with self._cursor() as cursor:
            cursor.execute(f"SELECT * FROM ({statement}) AS rtml_query LIMIT 0", values)
            columns = [(c.name, c.type_code) for c in cursor.description or ()]
            # COPY takes no bind parameters: psycopg2 escapes the values into the text.
            copy_sql = cursor.mogrify(statement, values).decode()
            with (
                tempfile.TemporaryFile() as spool,
                tqdm(
                    desc="pulling",
                    unit="B",
                    unit_scale=True,
                    disable=not self.progress,
                    leave=False,
                ) as bar,
            ):
                cursor.copy_expert(
                    f"COPY ({copy_sql}) TO STDOUT WITH (FORMAT csv)", _Counted(spool, bar)
                )
                spool.seek(0)
                table = _read_csv(spool, columns)
        return standard_dtypes(table.to_pandas())

    def rows(self, sql: str, params: Params | None = None) -> Columns:
        with self._cursor() as cursor:
            cursor.execute(self._pyformat(sql), dict(params or {}))
            names = [c.name for c in cursor.description or ()]
            return as_columns(names, cursor.fetchall())

    def close(self) -> None:
        self._pool.closeall()


class _Counted:
    """A file that moves a progress bar by the bytes written to it."""

    def __init__(self, file: Any, bar: tqdm) -> None:
        self.file, self.bar = file, bar

    def write(self, data: bytes) -> int:
        self.bar.update(len(data))
        return int(self.file.write(data))


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
