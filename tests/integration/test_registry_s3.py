"""Train, register, promote and pull through a real `mlflow server` whose artifacts live in
S3 (moto's S3 server on loopback), as on a real deployment; and a missing bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from entrypoints.cli import cli
from tests.conftest import demo_sqlite
from tests.integration.conftest import BUCKET
from tests.integration.servers import S3Server, mlflow_server

FAST = ["--set", "xgboost.num_boost_round=20", "-q"]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return demo_sqlite(tmp_path_factory, businesses=800, seed=4)


@pytest.fixture
def client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RTML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    yield
    mlflow.set_tracking_uri(None)


@pytest.mark.integration
@pytest.mark.slow
def test_train_register_promote_pull_through_a_server_with_s3_artifacts(
    s3: S3Server,
    demo_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    client_env: None,
) -> None:
    with mlflow_server(
        tmp_path, artifacts_destination=f"s3://{BUCKET}/mlartifacts", env=s3.env
    ) as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)  # the client has no S3 access
        runner = CliRunner()
        trained = runner.invoke(
            cli, ["train", "lender_match", "--register", "--set", f"source.url={demo_db}", *FAST]
        )
        assert trained.exit_code == 0, trained.output + server.log_tail()
        assert (
            runner.invoke(cli, ["promote", "lender_match", "1", "--alias", "champion"]).exit_code
            == 0
        )
        pulled = runner.invoke(cli, ["pull", "lender_match@champion", str(tmp_path / "host")])
        assert pulled.exit_code == 0, pulled.output
        assert (tmp_path / "host" / "config.json").exists()

        keys = s3.keys(BUCKET, "mlartifacts/")
        names = {key.rsplit("/", 1)[-1] for key in keys}
        # The run's config and fitted pipeline, and the model with its bundle, are in S3.
        assert {"config.json", "pipeline.json", "MLmodel", "model.ubj", "roc_test.png"} <= names
        version = MlflowClient(server.uri).get_model_version("lender_match", "1")
        assert version.tags["framework"] == "xgboost"


@pytest.mark.integration
@pytest.mark.slow
def test_a_missing_bucket_is_a_clear_error_and_registers_nothing(
    s3: S3Server,
    demo_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    client_env: None,
) -> None:
    with mlflow_server(
        tmp_path, artifacts_destination="s3://no-such-bucket/mlartifacts", env=s3.env
    ) as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
        # The server answers 500 for every upload; MLflow's default of 7 retries with
        # backoff would take ~4 minutes to give up.
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        result = CliRunner().invoke(
            cli, ["train", "lender_match", "--register", "--set", f"source.url={demo_db}", *FAST]
        )
        assert result.exit_code == 2, result.output
        assert "could not store the run" in result.output and "Traceback" not in result.output
        client = MlflowClient(server.uri)
        (run,) = client.search_runs([client.get_experiment_by_name("lender_match").experiment_id])
        assert run.info.status == "FAILED"
        assert client.search_registered_models() == []


@pytest.mark.integration
@pytest.mark.slow
def test_a_client_with_an_s3_artifact_location(
    s3: S3Server,
    demo_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    client_env: None,
) -> None:
    # No tracking server: the client writes artifacts to S3 itself (boto3 -> moto).
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("RTML_ARTIFACT_ROOT", f"s3://{BUCKET}/client-side")
    runner = CliRunner()
    trained = runner.invoke(
        cli, ["train", "lender_match", "--register", "--set", f"source.url={demo_db}", *FAST]
    )
    assert trained.exit_code == 0, trained.output
    names = {key.rsplit("/", 1)[-1] for key in s3.keys(BUCKET, "client-side/lender_match/")}
    assert {"config.json", "pipeline.json", "MLmodel", "model.ubj"} <= names
    assert (
        runner.invoke(cli, ["promote", "lender_match", "1", "--alias", "champion"]).exit_code == 0
    )
    pulled = runner.invoke(cli, ["pull", "lender_match@champion", str(tmp_path / "host")])
    assert pulled.exit_code == 0, pulled.output
