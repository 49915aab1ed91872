"""Bulk loading replaces tables in one transaction, on SQLite and on Postgres."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from ml.data.bulk import replace_tables
from ml.data.urls import create_engine, parse_db_url

metadata = sa.MetaData()
events = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("amount", sa.Float),
    sa.Column("count", sa.Integer),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Index("ix_events_at", "at"),
)


def _frame(n: int, start: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": range(start, start + n),
            "kind": ["a,b", 'say "hi"', "plain"] * (n // 3) + ["plain"] * (n % 3),
            "amount": [1.5, None, 1e9] * (n // 3) + [0.0] * (n % 3),
            "count": pd.array([1, None, 3] * (n // 3) + [4] * (n % 3), dtype="Int64"),
            "at": pd.date_range("2025-01-01", periods=n, freq="37min"),
        }
    )


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: object) -> sa.Engine:
    if request.param == "sqlite":
        url = parse_db_url(f"{tmp_path}/bulk.db")
    else:
        url = parse_db_url(request.getfixturevalue("postgres_url"))
    engine = create_engine(url)
    yield engine
    engine.dispose()


def _read(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as connection:
        frame = pd.read_sql_query(sa.select(events).order_by(events.c.event_id), connection)
    frame["at"] = pd.to_datetime(frame["at"])
    return frame


def test_round_trip_keeps_nulls_quotes_and_timestamps(engine: sa.Engine) -> None:
    frame = _frame(10)
    with replace_tables(engine, [events]) as loader:
        loader.append(events, frame.iloc[:4])
        loader.append(events, frame.iloc[4:])
    assert loader.rows_written == {"events": 10}
    back = _read(engine)
    assert back["kind"].tolist() == frame["kind"].tolist()
    assert back["amount"].isna().tolist() == frame["amount"].isna().tolist()
    assert back["count"].isna().tolist() == frame["count"].isna().tolist()
    assert (back["at"].dt.floor("s") == frame["at"]).all()
    assert "ix_events_at" in {ix["name"] for ix in sa.inspect(engine).get_indexes("events")}


def test_a_failed_load_leaves_the_old_tables(engine: sa.Engine) -> None:
    with replace_tables(engine, [events]) as loader:
        loader.append(events, _frame(6))
    with (
        pytest.raises(RuntimeError, match="interrupted"),
        replace_tables(engine, [events]) as loader,
    ):
        loader.append(events, _frame(3, start=100))
        raise RuntimeError("interrupted")
    assert _read(engine)["event_id"].tolist() == [1, 2, 3, 4, 5, 6]
