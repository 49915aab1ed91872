"""Loading demo data into real databases: identical in SQLite and Postgres, reusable, verifiable."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ml.data.urls import create_engine, parse_db_url
from ml.demo import DemoSpec, load_demo_data, schema, verify_demo_data
from ml.demo.fingerprint import read_fingerprints
from ml.errors import DataSourceError

SPEC = DemoSpec(businesses=600, seed=11)


def _sqlite(tmp_path: Path) -> sa.URL:
    return parse_db_url(f"sqlite:///{tmp_path}/demo.db")


def test_sqlite_load_matches_the_generated_fingerprints(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    result = load_demo_data(url, SPEC, progress=False)
    assert not result.reused
    assert result.fingerprints["businesses"].rows == 600
    engine = create_engine(url)
    assert read_fingerprints(engine, schema.DATA_TABLES) == result.fingerprints
    indexes = {ix["name"] for ix in sa.inspect(engine).get_indexes("applications")}
    assert {"ix_applications_submitted_at", "ix_applications_business_id"} <= indexes


def test_rerun_reuses_and_force_or_new_spec_rebuilds(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    first = load_demo_data(url, SPEC, progress=False)
    again = load_demo_data(url, SPEC, progress=False)
    assert again.reused and again.fingerprints == first.fingerprints
    forced = load_demo_data(url, SPEC, force=True, progress=False)
    assert not forced.reused and forced.fingerprints == first.fingerprints
    other = load_demo_data(url, DemoSpec(businesses=600, seed=12), progress=False)
    assert not other.reused and other.fingerprints != first.fingerprints
    stored, actual = verify_demo_data(url)
    assert stored.spec.seed == 12 and actual == other.fingerprints


def test_verify_detects_a_changed_row(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    load_demo_data(url, SPEC, progress=False)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE outcomes SET approved = 1 - approved WHERE application_id = 5")
        )
    stored, actual = verify_demo_data(url)
    assert actual["outcomes"] != stored.fingerprints["outcomes"]
    assert actual["businesses"] == stored.fingerprints["businesses"]


@pytest.mark.integration
def test_postgres_and_sqlite_hold_identical_data(tmp_path: Path, postgres_url: str) -> None:
    in_sqlite = load_demo_data(_sqlite(tmp_path), SPEC, progress=False)
    in_postgres = load_demo_data(parse_db_url(postgres_url), SPEC, progress=False)
    assert in_postgres.fingerprints == in_sqlite.fingerprints
    _, read_back = verify_demo_data(parse_db_url(postgres_url))
    assert read_back == in_sqlite.fingerprints
    assert load_demo_data(parse_db_url(postgres_url), SPEC, progress=False).reused


@pytest.mark.integration
def test_a_failed_write_is_not_called_a_connection_problem(postgres_url: str) -> None:
    import uuid

    import psycopg2

    role = f"rtml_reader_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE ROLE {role} LOGIN")  # may connect, may not create tables
    try:
        reader_url = parse_db_url(postgres_url.replace("://postgres@", f"://{role}@"))
        with pytest.raises(DataSourceError) as caught:
            load_demo_data(reader_url, SPEC, progress=False)
        message = str(caught.value)
        assert message.startswith("writing demo data to postgresql database")
        assert "permission denied" in message and "cannot connect" not in message
    finally:
        admin.close()
        cleanup = psycopg2.connect(postgres_url.rsplit("/", 1)[0] + "/postgres")
        cleanup.autocommit = True
        cleanup.cursor().execute(f"DROP ROLE IF EXISTS {role}")
        cleanup.close()
