"""A registry to serve from: demo data in a fresh Postgres database, lender_match trained
with XGBoost (v1, @champion) and VW (v2, @challenger), traffic 50/50, in a throwaway
MLflow store. Built once per test session; the database is dropped afterwards.

``served_app`` builds the real Flask app the way a gunicorn worker does (agent, store,
manifest, VW daemon) for ``app.test_client()`` tests.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import psycopg2
import pytest
from click.testing import CliRunner
from flask import Flask
from psycopg2 import sql

from entrypoints.cli import cli
from ml.data.urls import parse_db_url
from ml.demo import DemoSpec, load_demo_data
from serving.agent import prepare_host
from serving.app import create_app
from serving.settings import Settings
from serving.vw_daemon import DaemonSupervisor
from tests.conftest import ADMIN_URL

BUSINESSES = 1200


@dataclass(frozen=True)
class Served:
    tracking_uri: str
    database_url: str  # the demo marketplace in Postgres (the models' source)
    cache_dir: str
    xgboost_version: str = "1"
    vw_version: str = "2"

    @property
    def env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "RTML_CACHE_DIR": self.cache_dir}


def _train(served_db: str, framework: str) -> str:
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "lender_match",
            "--framework",
            framework,
            "--register",
            "-q",
            "--set",
            f"source.url={served_db}",
            "--set",
            "xgboost.num_boost_round=40",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    match = re.search(r"registered\s+lender_match version (\d+)", result.output)
    assert match, result.output
    return match.group(1)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    name = f"rtml_serve_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(ADMIN_URL, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    root = tmp_path_factory.mktemp("served")
    try:
        load_demo_data(parse_db_url(database_url), DemoSpec(businesses=BUSINESSES, seed=21))
        result = Served(
            tracking_uri=f"sqlite:///{root}/mlflow.db",
            database_url=database_url,
            cache_dir=str(root / "cache"),
        )
        with pytest.MonkeyPatch.context() as patch:
            for key, value in result.env.items():
                patch.setenv(key, value)
            patch.delenv("MLFLOW_RUN_ID", raising=False)
            mlflow.set_tracking_uri(result.tracking_uri)
            assert _train(database_url, "xgboost") == result.xgboost_version
            assert _train(database_url, "vw") == result.vw_version
            for args in (
                ["promote", "lender_match", "1", "--alias", "champion"],
                ["promote", "lender_match", "2", "--alias", "challenger"],
                ["traffic", "lender_match", "champion=50", "challenger=50"],
            ):
                outcome = CliRunner().invoke(cli, args, catch_exceptions=False)
                assert outcome.exit_code == 0, outcome.output
            mlflow.set_tracking_uri(None)
        yield result
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.close()


@pytest.fixture
def served_env(served: Served, monkeypatch: pytest.MonkeyPatch) -> Served:
    """``served``, with its MLflow store and cache set in this test's environment."""
    for key, value in served.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return served


@pytest.fixture(scope="session")
def served_store(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A host store prepared once by the agent (versions pulled, VW daemon, manifest)."""
    store = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as patch, DaemonSupervisor() as supervisor:
        for key, value in served.env.items():
            patch.setenv(key, value)
        prepare_host(Settings(store=store), supervisor)
        yield store


@pytest.fixture
def served_app(served_env: Served, served_store: Path) -> Callable[..., Flask]:
    """``make(**settings)`` -> the app a worker builds from the prepared store."""

    def make(**overrides: object) -> Flask:
        return create_app(Settings(store=served_store).with_overrides(**overrides))

    return make
