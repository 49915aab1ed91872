"""Shared fixtures: a throwaway Postgres database per test, on the machine's server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import psycopg2
import pytest
from mlflow.tracking import MlflowClient
from psycopg2 import sql

from ml.data.urls import parse_db_url
from ml.demo import DemoSpec, load_demo_data

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


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    """A fresh MLflow store (SQLite) and rtml cache for one test; MLflow reset after."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RTML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    yield MlflowClient(uri)
    mlflow.set_tracking_uri(None)


def demo_sqlite(factory: pytest.TempPathFactory, businesses: int, seed: int) -> str:
    """URL of a new SQLite demo marketplace (for module-scoped fixtures)."""
    path = factory.mktemp("demo") / "demo.db"
    load_demo_data(parse_db_url(f"sqlite:///{path}"), DemoSpec(businesses=businesses, seed=seed))
    return f"sqlite:///{path}"
