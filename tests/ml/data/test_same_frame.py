"""The acceptance check of the data layer: the demo query returns the same frame from
Postgres, Snowflake (fakesnow's server, real connector), SQLite and DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from ml.data.sources import open_source
from ml.data.urls import parse_db_url
from ml.demo import DemoSpec, load_demo_data
from ml.demo.queries import APPLICATIONS_IN_WINDOW
from ml.demo.schema import metadata
from tests.ml.data.snowflake_server import fakesnow_server, load_frames

SPEC = DemoSpec(businesses=120, seed=11)
WINDOW = {"start": "2025-03-01", "end": "2025-09-01"}


@pytest.fixture(scope="module")
def snowflake_url() -> Iterator[str]:
    with fakesnow_server() as server:
        yield server.url


def _tables(url: sa.URL) -> dict[str, pd.DataFrame]:
    """The demo tables, with integer columns that hold NULLs kept integer (Int64), so
    Snowflake gets the same column types as the other databases."""
    engine = sa.create_engine(url)
    frames = {}
    with engine.connect() as connection:
        for name, table in metadata.tables.items():
            frame = pd.read_sql_table(name, connection)
            for column in table.columns:
                if isinstance(column.type, sa.Integer):
                    frame[column.name] = frame[column.name].astype("Int64")
            frames[name] = frame
    engine.dispose()
    return frames


@pytest.mark.integration
def test_demo_query_gives_the_same_frame_everywhere(
    postgres_url: str, snowflake_url: str, tmp_path: Path
) -> None:
    sqlite = parse_db_url(f"sqlite:///{tmp_path}/demo.db")
    duckdb = parse_db_url(f"duckdb:///{tmp_path}/demo.duckdb")
    postgres = parse_db_url(postgres_url)
    for url in (sqlite, duckdb, postgres):
        load_demo_data(url, SPEC, progress=False)
    load_frames(snowflake_url, _tables(postgres))

    frames = {}
    for name, url in {
        "postgres": postgres,
        "snowflake": parse_db_url(snowflake_url),
        "sqlite": sqlite,
        "duckdb": duckdb,
    }.items():
        with open_source(url) as source:
            frames[name] = source.query(APPLICATIONS_IN_WINDOW, WINDOW)
    reference = frames.pop("postgres")
    assert len(reference) > 200
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, reference, obj=name)
