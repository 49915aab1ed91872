"""Database URLs: parsing, safe descriptions, clear connect errors."""

from __future__ import annotations

import pytest

from ml.data.urls import check_connection, create_engine, describe, parse_db_url, redact
from ml.errors import DataSourceError


def test_a_plain_path_means_sqlite() -> None:
    url = parse_db_url("var/demo.db")
    assert url.get_backend_name() == "sqlite"
    assert url.database == "var/demo.db"


def test_postgres_urls_use_the_shipped_driver() -> None:
    for text in ("postgresql://u@h/db", "postgres://u@h/db"):
        assert parse_db_url(text).drivername == "postgresql+psycopg2"
    assert parse_db_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+psycopg2"


def test_descriptions_and_redaction_hide_the_password() -> None:
    url = parse_db_url("postgresql://alice:hunter2@db.example:6543/sales")
    text = describe(url)
    assert "hunter2" not in text
    assert "db.example:6543" in text and "'sales'" in text and "alice" in text
    assert redact("postgresql://alice:hunter2@db/sales") == "postgresql://alice:***@db/sales"


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_url_is_refused(value: str) -> None:
    with pytest.raises(DataSourceError, match="empty database URL"):
        parse_db_url(value)


def test_unknown_dialect_is_a_clear_error() -> None:
    with pytest.raises(DataSourceError, match="no SQLAlchemy dialect or driver for 'nosuchdb'"):
        create_engine(parse_db_url("nosuchdb://h/x"))


def test_refused_connection_names_host_not_password() -> None:
    engine = create_engine(parse_db_url("postgresql://bob:s3cret@127.0.0.1:1/x"))
    with pytest.raises(DataSourceError) as caught:
        check_connection(engine)
    message = str(caught.value)
    assert "127.0.0.1:1" in message and "'x'" in message
    assert "s3cret" not in message
    assert "\n" not in message


def test_sqlite_in_unwritable_place_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(DataSourceError, match="cannot create folder /proc/nope"):
        create_engine(parse_db_url("/proc/nope/demo.db"))
