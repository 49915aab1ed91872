"""Snowflake through snowflake-connector-python: Arrow result batches, pooled connections.

URL: ``snowflake://user:password@account/database/schema?warehouse=W&role=R``, as
snowflake-sqlalchemy writes it. ``host``, ``port`` and ``protocol`` in the query
point the connector at another endpoint (a proxy, or fakesnow in tests);
``authenticator`` and ``private_key_file`` pass through. Without a password in the
URL, ``SNOWFLAKE_PASSWORD`` is used, so configs need not hold it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pyarrow as pa
import snowflake.connector
import sqlalchemy as sa
from snowflake.connector import SnowflakeConnection
from snowflake.connector.cursor import ResultMetadata
from snowflake.connector.errors import Error as SnowflakeError
from snowflake.connector.errors import ProgrammingError
from sqlalchemy.engine import URL
from sqlalchemy.engine.default import DefaultDialect

from ml.data.sources.base import Columns, Params, Source, as_columns, standard_dtypes
from ml.data.urls import CONNECT_TIMEOUT_S, connection_error, describe
from ml.errors import DataSourceError

_PASSTHROUGH = ("warehouse", "role", "host", "protocol", "authenticator", "private_key_file")
# The connector's "FIXED" type code: NUMBER(p, s).
_FIXED = 0
# Renders ``:name`` as ``?`` and lists the names in order, for server-side (qmark) binding.
_QMARK = DefaultDialect(paramstyle="qmark")


def connect_kwargs(url: URL) -> dict[str, Any]:
    """``snowflake.connector.connect`` arguments for ``url``."""
    options = {
        key: value if isinstance(value, str) else value[-1] for key, value in url.query.items()
    }
    database, _, schema = (url.database or "").partition("/")
    kwargs: dict[str, Any] = {
        "account": url.host,
        "user": url.username,
        "database": database or None,
        "schema": schema or None,
        "paramstyle": "qmark",  # values travel as bindings, never inside the SQL text
        # Bounds connecting only: network_timeout would also cap long training queries.
        "login_timeout": CONNECT_TIMEOUT_S,
        # Serving pools sit idle for hours; Snowflake drops sessions idle for 4 hours.
        "client_session_keep_alive": True,
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        **{key: options[key] for key in _PASSTHROUGH if key in options},
    }
    password = url.password or os.environ.get("SNOWFLAKE_PASSWORD")
    if password:
        kwargs["password"] = str(password)
    if port := options.get("port") or url.port:
        kwargs["port"] = int(port)
    return kwargs


class SnowflakeSource(Source):
    """Snowflake: training pulls come back as Arrow, serving reuses pooled sessions."""

    def __init__(self, url: URL, pool_size: int = 4) -> None:
        super().__init__(url)
        self._kwargs = connect_kwargs(url)
        self._idle: queue.LifoQueue[SnowflakeConnection] = queue.LifoQueue()
        # At most pool_size connections exist: one per holder of a slot.
        self._slots = threading.BoundedSemaphore(pool_size)
        self._closed = False

    @property
    def _endpoint(self) -> str:
        host, port = self._kwargs.get("host"), self._kwargs.get("port")
        return f"{host}:{port}" if host and port else str(host or "")

    @property
    def identity(self) -> str:
        # Another endpoint for the same account name is another server (fakesnow in tests).
        endpoint = self._endpoint
        return f"{super().identity}@{endpoint}" if endpoint else super().identity

    @property
    def description(self) -> str:
        endpoint = self._endpoint
        return f"{describe(self.url)} via {endpoint}" if endpoint else describe(self.url)

    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        statement, values = _qmark(sql, params)
        with self._connection() as connection, connection.cursor() as cursor:
            try:
                cursor.execute(statement, values)
                # force_return_table: an empty result still has its columns.
                table = cursor.fetch_arrow_all(force_return_table=True)
            except SnowflakeError as exc:
                raise self._query_error(exc) from exc
            described = cursor.description
        return standard_dtypes(_to_pandas(table, described))

    def rows(self, sql: str, params: Params | None = None) -> Columns:
        statement, values = _qmark(sql, params)
        with self._connection() as connection, connection.cursor() as cursor:
            try:
                cursor.execute(statement, values)
                records = cursor.fetchall()
            except SnowflakeError as exc:
                raise self._query_error(exc) from exc
            described = cursor.description
        names = [_column_name(column.name) for column in described]
        columns = as_columns(names, records)  # type: ignore[arg-type]
        # Scaled NUMBERs arrive as Decimal; query() gives floats, and serving must see
        # the values training saw.
        for column in described:
            if column.type_code == _FIXED and (column.scale or 0) > 0:
                name = _column_name(column.name)
                columns[name] = [None if v is None else float(v) for v in columns[name]]
        return columns

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    @contextmanager
    def _connection(self) -> Iterator[SnowflakeConnection]:
        with self._slots:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                connection = self._connect()
            healthy = False
            try:
                yield connection
                healthy = True
            except DataSourceError as exc:
                # A SQL error leaves the session usable; a network error may not.
                healthy = isinstance(exc.__cause__, ProgrammingError)
                raise
            finally:
                if healthy and not self._closed and not connection.is_closed():
                    self._idle.put(connection)
                else:
                    connection.close()

    def _connect(self) -> SnowflakeConnection:
        try:
            return snowflake.connector.connect(**self._kwargs)
        except SnowflakeError as exc:
            # The URL with the password actually used, so connection_error masks it.
            error = connection_error(self.url.set(password=self._kwargs.get("password")), exc)
            message = error.message.replace(describe(self.url), self.description, 1)
            raise DataSourceError(message, hint=error.hint) from exc


def _qmark(sql: str, params: Params | None) -> tuple[str, list[Any]]:
    """``sql`` with ``:name`` placeholders as ``?``, and the values in placeholder order."""
    compiled = sa.text(sql).compile(dialect=_QMARK)
    given = dict(params or {})
    missing = [name for name in compiled.positiontup or () if name not in given]
    if missing:
        raise DataSourceError(
            f"no value for query parameter :{missing[0]}",
            hint="pass every :name the query uses",
        )
    return str(compiled), [_bindable(given[name]) for name in compiled.positiontup or ()]


def _bindable(value: Any) -> Any:
    # The connector maps Python, NumPy and datetime types to Snowflake's, but not pandas'.
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _column_name(name: str) -> str:
    # Snowflake upper-cases unquoted identifiers; other databases keep them as written.
    return name.lower() if name.isupper() else name


def _to_pandas(table: pa.Table, described: list[ResultMetadata]) -> pd.DataFrame:
    """Arrow from the connector as the frame other sources give: int64, float64, datetime64."""
    columns = []
    for column, meta in zip(table.columns, described, strict=True):
        if meta.type_code == _FIXED:
            # Decided by the declared NUMBER(p, s), not the Arrow type: the connector sends
            # the narrowest integer per batch, decimals for wide ones, and int64 for any
            # NUMBER in an empty result. NUMBER(p, 0) stays an integer unless it overflows.
            try:
                column = column.cast(pa.float64() if meta.scale else pa.int64())
            except pa.ArrowInvalid:
                column = column.cast(pa.float64())
        elif pa.types.is_date64(column.type):
            # The connector's empty-result schema says date64 where rows come as date32.
            column = column.cast(pa.date32())
        columns.append(column)
    names = [_column_name(name) for name in table.column_names]
    return pa.table(columns, names=names).to_pandas()
