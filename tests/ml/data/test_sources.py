"""Sources return the same frame for the same query; failures name the database, not the password."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from ml.data.sources import PostgresSource, SqlAlchemySource, open_source
from ml.data.urls import parse_db_url
from ml.demo import DemoSpec, load_demo_data
from ml.demo.queries import APPLICATIONS_IN_WINDOW
from ml.errors import DataSourceError

SPEC = DemoSpec(businesses=400, seed=3)
WINDOW = {"start": "2025-06-01", "end": "2026-01-01"}


@pytest.fixture
def postgres_demo(postgres_url: str) -> str:
    load_demo_data(parse_db_url(postgres_url), SPEC, progress=False)
    return postgres_url


@pytest.mark.integration
def test_postgres_copy_path_equals_read_sql(postgres_demo: str) -> None:
    url = parse_db_url(postgres_demo)
    with PostgresSource(url) as fast, SqlAlchemySource(url) as plain:
        ours = fast.query(APPLICATIONS_IN_WINDOW, WINDOW)
        reference = plain.query(APPLICATIONS_IN_WINDOW, WINDOW)
    assert len(ours) > 1000
    pd.testing.assert_frame_equal(ours, reference, check_dtype=False)
    assert ours["submitted_at"].dtype.kind == "M" and ours["application_id"].dtype == "int64"


@pytest.mark.integration
def test_sqlite_and_postgres_return_the_same_rows(postgres_demo: str, tmp_path: Path) -> None:
    sqlite_url = parse_db_url(f"sqlite:///{tmp_path}/demo.db")
    load_demo_data(sqlite_url, SPEC, progress=False)
    with open_source(parse_db_url(postgres_demo)) as pg, open_source(sqlite_url) as lite:
        from_pg = pg.query(APPLICATIONS_IN_WINDOW, WINDOW)
        from_sqlite = lite.query(APPLICATIONS_IN_WINDOW, WINDOW)
    # SQLite has no timestamp type: the source parses the text rtml wrote.
    pd.testing.assert_frame_equal(from_pg, from_sqlite)


ONE_BUSINESS = """
    SELECT p.product_id, p.lender_id, p.product_type, p.max_amount, b.credit_score, b.industry
    FROM loan_products p CROSS JOIN businesses b
    WHERE b.business_id = :business_id ORDER BY p.product_id
"""


@pytest.mark.integration
def test_serving_rows_match_the_bulk_path(postgres_demo: str, tmp_path: Path) -> None:
    sqlite_url = parse_db_url(f"sqlite:///{tmp_path}/demo.db")
    load_demo_data(sqlite_url, SPEC, progress=False)
    for url in (parse_db_url(postgres_demo), sqlite_url):
        with open_source(url) as source:
            rows = source.rows(ONE_BUSINESS, {"business_id": 7})
            frame = source.query(ONE_BUSINESS, {"business_id": 7})
            assert list(rows) == list(frame.columns)
            assert rows["product_id"] == frame["product_id"].tolist()
            assert rows["industry"] == frame["industry"].tolist()
            assert source.rows(ONE_BUSINESS, {"business_id": -1})["product_id"] == []


@pytest.mark.integration
def test_postgres_pool_serves_more_threads_than_connections(postgres_demo: str) -> None:
    with PostgresSource(parse_db_url(postgres_demo), pool_size=2) as source:

        def ask(business_id: int) -> int:
            return len(source.rows(ONE_BUSINESS, {"business_id": business_id})["product_id"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            counts = list(pool.map(ask, range(1, 65)))
    assert len(set(counts)) == 1 and counts[0] > 50


@pytest.mark.integration
def test_parameters_are_values_not_sql(postgres_demo: str) -> None:
    with open_source(parse_db_url(postgres_demo)) as source:
        frame = source.query(
            "SELECT industry FROM businesses WHERE industry = :name OR state = :state",
            {"name": "x'; DROP TABLE businesses; --", "state": "100%"},
        )
        assert frame.empty
        assert len(source.query("SELECT business_id FROM businesses")) == SPEC.businesses


@pytest.mark.integration
def test_missing_table_is_a_clear_error(postgres_demo: str) -> None:
    with (
        open_source(parse_db_url(postgres_demo)) as source,
        pytest.raises(DataSourceError) as caught,
    ):
        source.query("SELECT * FROM no_such_table")
    assert 'relation "no_such_table" does not exist' in str(caught.value)
    assert "check the table and column names" in str(caught.value)


def test_unreachable_postgres_names_host_not_password() -> None:
    with pytest.raises(DataSourceError) as caught:
        open_source(parse_db_url("postgresql://bob:s3cret@127.0.0.1:1/lending"))
    assert "127.0.0.1:1" in str(caught.value) and "s3cret" not in str(caught.value)


def test_sqlite_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    url = parse_db_url(f"sqlite:///{tmp_path}/demo.db")
    load_demo_data(url, DemoSpec(businesses=50), progress=False)
    with open_source(url) as source, pytest.raises(DataSourceError, match="no such column: nope"):
        source.query("SELECT nope FROM businesses")


def test_identity_leaves_out_credentials() -> None:
    remote = SqlAlchemySource(parse_db_url("postgresql://bob:s3cret@db.example:5433/lending"))
    assert remote.identity == "postgresql://db.example:5433/lending"  # no connection needed


def test_file_database_identity_changes_when_the_file_does(tmp_path: Path) -> None:
    url = parse_db_url(f"sqlite:///{tmp_path}/demo.db")
    load_demo_data(url, DemoSpec(businesses=50), progress=False)
    with SqlAlchemySource(url) as source:
        before = source.identity
        assert str(tmp_path / "demo.db") in before
        load_demo_data(url, DemoSpec(businesses=60), progress=False)
        assert source.identity != before


def test_serving_errors_say_whether_to_retry(postgres_url: str) -> None:
    """Serving turns these into 503 (retry), 422 (the caller's value) or 500 (our query)."""
    from ml.errors import DataSourceUnavailable, QueryTimeout, QueryValueError
    from tests.integration.servers import free_port

    with open_source(parse_db_url(postgres_url), statement_timeout_ms=200) as source:
        with pytest.raises(QueryTimeout):
            source.rows("SELECT pg_sleep(2)")
        with pytest.raises(QueryValueError, match="invalid input syntax"):
            source.rows("SELECT 1 WHERE 1 = CAST(:id AS integer)", {"id": "abc"})
        with pytest.raises(DataSourceError) as broken:
            source.rows("SELECT no_such_column FROM pg_class")
        assert not isinstance(broken.value, DataSourceUnavailable)
        assert source.rows("SELECT 1 AS one") == {"one": [1]}  # the pool is still usable
    nobody = parse_db_url(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    # Lazy: the source opens fine; the first query says the database is unavailable.
    with (
        open_source(nobody, statement_timeout_ms=200) as source,
        pytest.raises(DataSourceUnavailable, match="cannot connect"),
    ):
        source.rows("SELECT 1")
