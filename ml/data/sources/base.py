"""What every source does: run a parameterized query for training (a DataFrame) or for
serving (a few rows as columns of Python values, on a pooled connection)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import pandas as pd
from sqlalchemy.engine import URL

from ml.data.urls import describe
from ml.errors import DataSourceError

Params = Mapping[str, Any]
# Serving's result: column name -> values, in the order the query returned them.
Columns = dict[str, list[Any]]


class Source(ABC):
    """A database rtml reads from.

    Queries use named parameters, ``:name`` (SQLAlchemy's style), whatever the
    database; values are sent separately from the SQL text (or escaped by the
    driver), never pasted in by rtml.
    """

    def __init__(self, url: URL) -> None:
        self.url = url

    @property
    def identity(self) -> str:
        """What the data is, for cache keys: dialect, host, port, database (no credentials)."""
        url = self.url
        return f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"

    @property
    def description(self) -> str:
        """A human name for messages (host and database, never the password)."""
        return describe(self.url)

    @abstractmethod
    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        """All rows of ``sql`` as a DataFrame: the bulk path for training data."""

    @abstractmethod
    def rows(self, sql: str, params: Params | None = None) -> Columns:
        """The rows of a small query as columns of Python values: serving's fast path.

        No DataFrame is built; the connection comes from the source's pool.
        """

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
        if self.url.password:
            reason = reason.replace(str(self.url.password), "***")
        return DataSourceError(
            f"query failed on {self.description}: {reason}",
            hint="check the table and column names in the model's query, "
            "and that the user may read them",
        )


def standard_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the same dtypes whatever the database: int64, float64, datetime64[us].

    Drivers differ (Snowflake returns nanosecond timestamps, DuckDB 32-bit integers);
    a model must not train differently because its data moved between databases.
    """
    for name, column in frame.items():
        dtype = column.dtype
        if dtype.kind == "M" and column.dt.unit != "us":
            frame[name] = column.dt.as_unit("us")
        elif dtype.kind in "iu" and dtype != "int64":
            frame[name] = column.astype("int64")
        elif dtype.kind == "f" and dtype != "float64":
            frame[name] = column.astype("float64")
    return frame


def as_columns(names: list[str], records: list[tuple[Any, ...]]) -> Columns:
    """Row tuples from a DB-API cursor as a column mapping."""
    if not records:
        return {name: [] for name in names}
    return {
        name: list(values) for name, values in zip(names, zip(*records, strict=True), strict=True)
    }
