"""Shared fixtures: a throwaway Postgres database per test, on the machine's server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
from psycopg2 import sql

# The machine's Postgres (trust auth). Tests create their own databases and drop them after.
ADMIN_URL = os.environ.get("RTML_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin() -> psycopg2.extensions.connection:
    connection = psycopg2.connect(ADMIN_URL, connect_timeout=5)
    connection.autocommit = True
    return connection


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty Postgres database that is dropped after the test."""
    name = f"rtml_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = _admin()
    except psycopg2.OperationalError as exc:
        pytest.fail(f"Postgres at {ADMIN_URL} is not answering ({exc}); .ci/run starts it")
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.close()
