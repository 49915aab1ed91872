"""Content fingerprints of the demo tables, equal across databases for equal data.

Each database returns values in its own types (SQLite text timestamps, Postgres
datetimes, nullable integers as floats), so rows are first written in one
canonical text form, driven by the table's declared column types, then hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ml.data.bulk import TIMESTAMP_FORMAT

_READ_CHUNK_ROWS = 200_000


@dataclass(frozen=True)
class Fingerprint:
    rows: int
    sha256: str  # first 16 hex digits of the digest of the canonical rows

    def __str__(self) -> str:
        return f"{self.rows} rows, sha256 {self.sha256}"


class TableHasher:
    """Feeds frames (in primary-key order) into a running digest of one table."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.rows = 0
        self._digest = hashlib.sha256()

    def update(self, frame: pd.DataFrame) -> None:
        canonical = {}
        for column in self.table.columns:
            values = frame[column.name]
            if isinstance(column.type, sa.DateTime):
                values = pd.to_datetime(values).dt.strftime(TIMESTAMP_FORMAT)
            elif isinstance(column.type, sa.Integer | sa.Float):
                values = pd.to_numeric(values).astype("float64").round(6)
            canonical[column.name] = values
        text = pd.DataFrame(canonical).to_csv(
            index=False, header=False, float_format="%.6f", na_rep=""
        )
        self._digest.update(text.encode())
        self.rows += len(frame)

    def result(self) -> Fingerprint:
        return Fingerprint(self.rows, self._digest.hexdigest()[:16])


def read_fingerprints(engine: Engine, tables: Iterable[sa.Table]) -> dict[str, Fingerprint]:
    """Fingerprint what the database holds now (reads every row, in chunks)."""
    result = {}
    with engine.connect() as connection:
        for table in tables:
            hasher = TableHasher(table)
            query = sa.select(table).order_by(*table.primary_key.columns)
            for chunk in pd.read_sql_query(query, connection, chunksize=_READ_CHUNK_ROWS):
                hasher.update(chunk)
            result[table.name] = hasher.result()
    return result
