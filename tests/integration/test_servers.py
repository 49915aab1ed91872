"""The MLflow deployment shape against real processes: a tracking server whose artifacts
live in S3 (moto), the model registry through it, a Postgres backend, and how fast a
client gives up on a server that is not there."""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import psycopg2
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.integration.conftest import BUCKET
from tests.integration.servers import (
    MlflowServer,
    S3Server,
    free_port,
    mlflow_server,
    moto_s3_server,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREFIX = "mlartifacts"

# Everything that could let this process reach S3 on its own. The client gets none of
# it: with proxied artifacts only the server talks to S3.
_CLIENT_S3_ENV = (
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)

# A models-from-code pyfunc (no pickle): MLflow logs this file and runs it on load.
_MODEL_CODE = """\
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class Doubler(PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return model_input * 2


mlflow.models.set_model(Doubler())
"""


@pytest.fixture(scope="module")
def s3_tracking_server(
    s3: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    # One server for the module: it takes several seconds to start.
    with mlflow_server(
        tmp_path_factory.mktemp("mlflow-s3"),
        artifacts_destination=f"s3://{BUCKET}/{PREFIX}",
        env=s3.env,  # the server, and only the server, writes to S3
    ) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_tracking_uri() -> Iterator[None]:
    # mlflow.set_tracking_uri is process-global; None means "follow the environment"
    # again, the state other tests start from.
    yield
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def _use(server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point this process's MLflow client at ``server``, with no S3 access of its own."""
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    for name in _CLIENT_S3_ENV:
        monkeypatch.delenv(name, raising=False)
    # Nor credentials from files, nor a wait on instance metadata: a direct S3 call from
    # the client would fail at once instead of quietly succeeding or hanging.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # A tracking URI set earlier in this process would win over the environment.
    mlflow.set_tracking_uri(server.uri)


def test_run_artifacts_land_in_s3_through_the_server(
    s3: S3Server,
    s3_tracking_server: MlflowServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use(s3_tracking_server, monkeypatch)
    experiment_id = mlflow.create_experiment(f"s3-{uuid.uuid4().hex[:8]}")
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n1,2\n")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("auc", 0.75)
        mlflow.log_text("hello from the client", "notes/hello.txt")
        mlflow.log_artifact(str(data), artifact_path="data")
    run_id = run.info.run_id

    # The client only ever saw the proxy scheme; the server resolved it to the bucket.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    stored = MlflowClient().get_run(run_id)
    assert stored.data.params == {"alpha": "0.5"}
    assert stored.data.metrics == {"auc": 0.75}
    assert stored.info.status == "FINISHED"

    prefix = f"{PREFIX}/{experiment_id}/{run_id}/artifacts"
    assert set(s3.keys(BUCKET, f"{PREFIX}/")) >= {
        f"{prefix}/notes/hello.txt",
        f"{prefix}/data/rows.csv",
    }
    body = s3.client().get_object(Bucket=BUCKET, Key=f"{prefix}/data/rows.csv")["Body"].read()
    assert body == b"a,b\n1,2\n"

    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="notes/hello.txt", dst_path=str(tmp_path / "down")
    )
    assert Path(local).read_text() == "hello from the client"


def test_registry_alias_round_trip_through_the_server(
    s3: S3Server,
    s3_tracking_server: MlflowServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use(s3_tracking_server, monkeypatch)
    code = tmp_path / "doubler.py"
    code.write_text(_MODEL_CODE)
    name = f"doubler-{uuid.uuid4().hex[:8]}"
    experiment_id = mlflow.create_experiment(f"registry-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            # Given, so MLflow skips inferring them (a subprocess that loads the model).
            pip_requirements=["mlflow", "pandas"],
        )
    version = mlflow.register_model(info.model_uri, name)
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", version.version)

    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.version == version.version
    assert champion.aliases == ["champion"]
    # The model's files went to S3 too, and come back through the proxy by alias.
    assert any(key.endswith("/doubler.py") for key in s3.keys(BUCKET, f"{PREFIX}/"))
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert model.predict(pd.DataFrame({"x": [1, 2]}))["x"].tolist() == [2, 4]


# How long MLflow's client takes to give up, measured with MLflow 3.17 / urllib3 2.8.
# Between attempts urllib3 sleeps backoff_factor * 2**(n-1) s (+ up to 1 s jitter) before
# retry n >= 2; the first retry is immediate. Against a closed port (connection refused):
# MLFLOW_HTTP_REQUEST_MAX_RETRIES 0 or 1: ~0.02 s; 2: ~4.6 s; 3: ~12.7 s; the default 7
# (factor 2, sleeps capped at 120 s: 0+4+8+16+32+64+120): 245 s. Against a server that
# accepts but never answers, every attempt also waits MLFLOW_HTTP_REQUEST_TIMEOUT
# (default 120 s), so the defaults would take about 8 * 120 + 245 s = 20 minutes. A
# "tracking server unreachable" check should set both: retries 0 or 1, timeout a few s.


@pytest.mark.parametrize("retries", [0, 1])
def test_closed_port_fails_fast_with_few_retries(
    retries: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(retries))
    client = MlflowClient(tracking_uri=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(MlflowException, match="Max retries exceeded"):
        client.search_experiments(max_results=1)
    assert time.monotonic() - started < 1.0


def test_hung_server_fails_after_the_request_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")  # whole seconds only
    # Listening but never accepting: the kernel completes the handshake, nobody answers.
    with contextlib.closing(socket.socket()) as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen()
        client = MlflowClient(tracking_uri=f"http://127.0.0.1:{hung.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(MlflowException, match="Read timed out"):
            client.search_experiments(max_results=1)
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 3.0


def test_postgres_backend(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mlflow_server(tmp_path, backend_uri=postgres_url) as server:
        _use(server, monkeypatch)
        experiment_id = mlflow.create_experiment("postgres-backed")
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_param("alpha", "0.5")
            mlflow.log_metric("auc", 0.75)
            mlflow.log_text("stored on local disk", "notes.txt")
        client = MlflowClient()
        client.create_registered_model("pg-model", tags={"traffic": "champion=100"})
        assert client.get_run(run.info.run_id).data.params == {"alpha": "0.5"}

    # The server really kept its state in this database, not in a SQLite file.
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_uuid FROM runs")
        assert cursor.fetchall() == [(run.info.run_id,)]
        cursor.execute("SELECT key, value FROM registered_model_tags WHERE name = 'pg-model'")
        assert cursor.fetchall() == [("traffic", "champion=100")]
    connection.close()
    assert (tmp_path / "artifacts" / experiment_id / run.info.run_id).is_dir()


def test_a_server_that_cannot_start_raises_with_its_log(tmp_path: Path) -> None:
    # MLflow rejects the unknown scheme while starting; the error must carry its words.
    with (
        pytest.raises(RuntimeError, match=r"did not start \(exited") as raised,
        mlflow_server(tmp_path, backend_uri="nosuchdb://nowhere", timeout_s=30),
    ):
        pass
    assert "nosuchdb" in str(raised.value)


def test_servers_stop_when_the_block_raises() -> None:
    with pytest.raises(KeyError), moto_s3_server() as s3:
        endpoint = s3.endpoint_url
        raise KeyError("the test failed")
    with pytest.raises(OSError):  # connection refused: nothing listens there any more
        urllib.request.urlopen(endpoint, timeout=2)
