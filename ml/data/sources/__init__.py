"""Data sources: run a parameterized query, get a DataFrame (training) or columns (serving).

- :class:`PostgresSource`: psycopg2, pooled; bulk pulls through COPY + Arrow.
- :class:`SnowflakeSource`: snowflake-connector-python, Arrow result batches.
- :class:`SqlAlchemySource`: any other SQLAlchemy URL (SQLite, DuckDB, MySQL/MariaDB).

:func:`open_source` picks the right one for a URL; :func:`source_url` turns a model
config's ``source`` (a URL, or the name of an environment variable holding one) into it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sqlalchemy.engine import URL

from ml.config.models import Source as SourceConfig
from ml.data.sources.base import Columns, Params, Source
from ml.data.sources.postgres import PostgresSource
from ml.data.sources.sqlalchemy_source import SqlAlchemySource
from ml.data.urls import parse_db_url
from ml.errors import DataSourceError

__all__ = [
    "Columns",
    "Params",
    "PostgresSource",
    "SqlAlchemySource",
    "Source",
    "open_source",
    "source_url",
]


def open_source(
    url: URL, progress: bool = False, *, statement_timeout_ms: int | None = None
) -> Source:
    """The fastest source rtml has for ``url``; ``progress`` shows bulk pulls as they stream
    (where the driver streams: Postgres).

    ``statement_timeout_ms`` (serving) bounds each query where the database can enforce it
    (Postgres), and opens the connection pool lazily, so a service can start, answer 503
    and recover while its database is down.
    """
    backend = url.get_backend_name()
    if backend == "postgresql":
        return PostgresSource(
            url,
            progress=progress,
            statement_timeout_ms=statement_timeout_ms,
            lazy=statement_timeout_ms is not None,
        )
    if backend == "snowflake":
        # Imported here: the connector is heavy and only Snowflake users need it.
        from ml.data.sources.snowflake import SnowflakeSource

        return SnowflakeSource(url)
    return SqlAlchemySource(url)


def source_url(config: SourceConfig, environ: Mapping[str, str] | None = None) -> URL:
    """The database URL a model config points at.

    ``dsn_env`` names an environment variable, so credentials stay out of the config,
    MLflow params and logs; only the variable's name ever appears in messages.
    """
    env = os.environ if environ is None else environ
    if config.dsn_env is not None:
        value = env.get(config.dsn_env, "").strip()
        if not value:
            raise DataSourceError(
                f"environment variable {config.dsn_env} (source.dsn_env) is not set",
                hint=f"export {config.dsn_env}=dialect://user:password@host/database",
            )
        try:
            return parse_db_url(value)
        except DataSourceError as exc:
            # parse_db_url already redacts; say which variable held the bad value.
            raise DataSourceError(f"{config.dsn_env}: {exc.message}", hint=exc.hint) from exc
    assert config.url is not None  # the config check requires exactly one of url/dsn_env
    return parse_db_url(config.url)
