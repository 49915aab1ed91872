"""SnowflakeSource against a real fakesnow server, through the real connector over loopback."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import make_url

from ml.data.sources.snowflake import SnowflakeSource, connect_kwargs
from ml.errors import DataSourceError
from tests.ml.data.snowflake_server import FakesnowServer, _free_port, fakesnow_server, load_frames

COLUMNS = ["id", "amount", "price", "name", "seen_at", "day"]
# Timestamps and dates go in as ISO text: executemany binds a column of mixed values as
# TEXT, and fakesnow (DuckDB) cannot read the connector's epoch-number text as a date.
EVENTS = [
    (1, 10.5, "12.25", "alpha", "2025-01-02 03:04:05", "2025-01-02"),
    (2, None, None, "beta", "2025-03-04 05:06:07.123456", "2025-03-04"),
    (3, 30.0, "7.50", "gamma", "2025-06-07 08:09:10", "2025-06-07"),
    (4, 40.25, "1.00", None, "2025-09-10 11:12:13", "2025-09-10"),
]
SELECT_EVENTS = "SELECT id, amount, price, name, seen_at, day FROM events"


@pytest.fixture(scope="module")
def server() -> Iterator[FakesnowServer]:
    with fakesnow_server() as running:
        yield running


@pytest.fixture(scope="module")
def events(server: FakesnowServer) -> str:
    """The URL of DB1.SCHEMA1, holding the EVENTS table (created on login by fakesnow)."""
    connection = server.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE OR REPLACE TABLE events (id INTEGER, amount DOUBLE, price NUMBER(10, 2),"
                " name VARCHAR, seen_at TIMESTAMP_NTZ, day DATE)"
            )
            cursor.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", EVENTS)
    finally:
        connection.close()
    return server.url


@pytest.fixture
def source(events: str) -> Iterator[SnowflakeSource]:
    opened = SnowflakeSource(make_url(events))
    try:
        yield opened
    finally:
        opened.close()


def _expected(ids: list[int]) -> pd.DataFrame:
    rows = [row for row in EVENTS if row[0] in ids]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["amount"] = frame["amount"].astype("float64")
    frame["price"] = frame["price"].astype("float64")
    frame["seen_at"] = pd.to_datetime(frame["seen_at"], format="ISO8601")
    frame["day"] = [dt.date.fromisoformat(day) for day in frame["day"]]
    return frame


@pytest.mark.integration
def test_query_binds_named_parameters_and_returns_typed_columns(
    source: SnowflakeSource,
) -> None:
    frame = source.query(
        f"{SELECT_EVENTS} WHERE seen_at >= :since AND day < :until AND id <> :skip"
        " AND id <> :skip + 10 ORDER BY id",
        {"since": dt.datetime(2025, 1, 2, 3, 4, 5), "until": dt.date(2025, 9, 10), "skip": 99},
    )
    pd.testing.assert_frame_equal(frame, _expected([1, 2, 3]), check_dtype=False)
    assert list(frame.columns) == COLUMNS  # Snowflake's upper-case names, lowered
    assert frame["id"].dtype == "int64"
    assert frame["amount"].dtype == "float64" and frame["price"].dtype == "float64"
    assert pd.api.types.is_string_dtype(frame["name"])
    assert frame["seen_at"].dtype.kind == "M" and frame["seen_at"].dt.tz is None
    assert frame.loc[1, "seen_at"] == pd.Timestamp("2025-03-04 05:06:07.123456")


@pytest.mark.integration
def test_pandas_timestamps_bind_like_datetimes(source: SnowflakeSource) -> None:
    frame = source.query(
        "SELECT id FROM events WHERE seen_at > :since ORDER BY id",
        {"since": pd.Timestamp("2025-06-07 08:09:10")},
    )
    assert frame["id"].tolist() == [4]


@pytest.mark.integration
def test_parameters_are_values_not_sql(source: SnowflakeSource) -> None:
    frame = source.query(
        "SELECT id FROM events WHERE name = :name OR name LIKE :pattern",
        {"name": "x'; DROP TABLE events; --", "pattern": "100%"},
    )
    assert frame.empty
    assert source.query("SELECT COUNT(*) AS n FROM events")["n"].tolist() == [len(EVENTS)]


@pytest.mark.integration
def test_empty_result_keeps_its_columns(source: SnowflakeSource) -> None:
    frame = source.query(f"{SELECT_EVENTS} WHERE id > :n", {"n": 100})
    assert frame.empty and list(frame.columns) == COLUMNS
    assert frame["id"].dtype == "int64" and frame["price"].dtype == "float64"
    assert source.rows(f"{SELECT_EVENTS} WHERE id > :n", {"n": 100}) == {c: [] for c in COLUMNS}


@pytest.mark.integration
def test_missing_table_is_a_clear_error_and_the_session_survives(source: SnowflakeSource) -> None:
    for run in (source.query, source.rows):
        with pytest.raises(DataSourceError) as caught:
            run("SELECT * FROM no_such_table", None)
        message = str(caught.value)
        assert "NO_SUCH_TABLE does not exist" in message
        assert "snowflake database 'DB1/SCHEMA1' at fakesnow" in message
        assert "check the table and column names" in message
    assert len(source.query(SELECT_EVENTS)) == len(EVENTS)


@pytest.mark.integration
def test_missing_parameter_is_named(source: SnowflakeSource) -> None:
    with pytest.raises(DataSourceError, match="no value for query parameter :until"):
        source.query(f"{SELECT_EVENTS} WHERE day >= :since AND day < :until", {"since": "x"})


@pytest.mark.integration
def test_rows_returns_the_values_query_returns(source: SnowflakeSource) -> None:
    sql = f"{SELECT_EVENTS} WHERE id <= :last ORDER BY id"
    frame = source.query(sql, {"last": 3})
    columns = source.rows(sql, {"last": 3})
    assert list(columns) == COLUMNS
    for name in COLUMNS:
        expected = frame[name].astype(object).where(frame[name].notna(), None).tolist()
        assert columns[name] == expected, name
    assert columns["price"] == [12.25, None, 7.5]  # floats, as query() gives, not Decimal
    assert columns["seen_at"][1] == dt.datetime(2025, 3, 4, 5, 6, 7, 123456)


@pytest.mark.integration
def test_pooled_rows_from_many_threads(events: str) -> None:
    sql = "SELECT id, name FROM events WHERE id = :id"
    source = SnowflakeSource(make_url(events), pool_size=2)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda i: source.rows(sql, {"id": i % 4 + 1}), range(24)))
    assert [r["id"] for r in results] == [[i % 4 + 1] for i in range(24)]
    assert source._idle.qsize() <= 2  # never more connections than the pool allows
    source.close()
    assert source._idle.empty()


@pytest.mark.integration
def test_identity_names_the_endpoint_not_credentials(events: str) -> None:
    url = make_url(events).set(password="s3cret")
    with SnowflakeSource(url) as source:
        assert source.identity == f"snowflake://fakesnow:/DB1/SCHEMA1@127.0.0.1:{url.query['port']}"
        assert "s3cret" not in source.description


@pytest.mark.integration
def test_unreachable_server_fails_fast_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = _free_port("127.0.0.1")  # nothing listens there
    where = f"acme-xy123/LENDING/PUBLIC?host=127.0.0.1&port={port}&protocol=http"
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "envs3cret")
    # The password from the URL, then from the environment.
    for candidate in (
        make_url(f"snowflake://bob:s3cret@{where}"),
        make_url(f"snowflake://bob@{where}"),
    ):
        started = time.monotonic()
        with SnowflakeSource(candidate) as source, pytest.raises(DataSourceError) as caught:
            source.query("SELECT 1")
        assert time.monotonic() - started < 15
        message = str(caught.value)
        assert "cannot connect to snowflake database 'LENDING/PUBLIC' at acme-xy123" in message
        assert f"127.0.0.1:{port}" in message
        assert "s3cret" not in message


def test_connect_kwargs_from_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    where = "acme-xy123/LENDING/PUBLIC?warehouse=WH&role=ANALYST"
    kwargs = connect_kwargs(make_url(f"snowflake://bob:pw@{where}"))
    assert {k: kwargs[k] for k in ("account", "user", "password", "database", "schema")} == {
        "account": "acme-xy123",
        "user": "bob",
        "password": "pw",
        "database": "LENDING",
        "schema": "PUBLIC",
    }
    assert kwargs["warehouse"] == "WH" and kwargs["role"] == "ANALYST"
    assert kwargs["paramstyle"] == "qmark" and "host" not in kwargs and "port" not in kwargs
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "from-env")
    assert connect_kwargs(make_url(f"snowflake://bob@{where}"))["password"] == "from-env"
    local = connect_kwargs(make_url("snowflake://u@a/D?host=127.0.0.1&port=8080&protocol=http"))
    assert (local["host"], local["port"], local["protocol"]) == ("127.0.0.1", 8080, "http")
    assert (local["database"], local["schema"]) == ("D", None)


@pytest.mark.integration
def test_load_frames_round_trips_dtypes(server: FakesnowServer) -> None:
    n = 3000
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "score": pd.array(
                np.where(rng.random(n) < 0.1, np.nan, rng.integers(300, 850, n)), "Int64"
            ),
            "amount": np.where(rng.random(n) < 0.1, np.nan, rng.random(n) * 1000),
            "name": pd.Series([f"n{i}" if i % 7 else None for i in range(n)], dtype="str"),
            "submitted_at": (
                np.datetime64("2025-01-01T00:00:00", "s")
                + rng.integers(0, 10**7, n).astype("timedelta64[s]")
            ),
            "day": [dt.date(2025, 1, 1) + dt.timedelta(days=i % 300) for i in range(n)],
            "approved": rng.random(n) < 0.5,
        }
    )
    started = time.monotonic()
    load_frames(server.url, {"loaded": frame})
    assert time.monotonic() - started < 20
    with SnowflakeSource(make_url(server.url)) as source:
        back = source.query("SELECT * FROM loaded ORDER BY id")
        kinds = source.query(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'LOADED' ORDER BY ordinal_position"
        )
    expected = frame.assign(score=frame["score"].astype("float64"))  # NULLs make it float
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert back["id"].dtype == "int64" and back["submitted_at"].dtype.kind == "M"
    assert kinds["data_type"].tolist() == [
        "NUMBER", "NUMBER", "FLOAT", "TEXT", "TIMESTAMP_NTZ", "DATE", "BOOLEAN"
    ]  # fmt: skip


@pytest.mark.integration
def test_load_frames_takes_connect_kwargs_and_replaces_tables(server: FakesnowServer) -> None:
    kwargs = connect_kwargs(make_url(server.url_for("DB2", "ANALYTICS")))
    load_frames(kwargs, {"t": pd.DataFrame({"x": [1, 2, 3]})})
    load_frames(
        kwargs, {"t": pd.DataFrame({"x": [4], "at": [pd.Timestamp("2025-01-01", tz="UTC")]})}
    )
    with SnowflakeSource(make_url(server.url_for("DB2", "ANALYTICS"))) as source:
        frame = source.query("SELECT * FROM t")
    pd.testing.assert_frame_equal(
        frame, pd.DataFrame({"x": [4], "at": [pd.Timestamp("2025-01-01")]}), check_dtype=False
    )
