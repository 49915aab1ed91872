"""MLflow plumbing: where runs go, one experiment per model, and what a run records.

``MLFLOW_TRACKING_URI`` wins when set (a tracking server, a database). Without it,
runs go to a local store under ``var/``: a SQLite database for runs and the
registry, artifacts in ``var/mlartifacts``. (MLflow's plain ``mlruns`` folder
store is deprecated and has no model registry.) ``RTML_ARTIFACT_ROOT`` (e.g.
``s3://bucket/mlflow``) sets where new experiments keep their artifacts when the
client itself writes them (no tracking server proxying artifacts).
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pandas.errors import Pandas4Warning

from ml.config.models import ModelConfig
from ml.data.urls import redact
from ml.errors import RtmlError

LOCAL_STORE = Path("var")
REACH_TIMEOUT_S = 5

# MLflow advises on integer columns whenever it infers a schema (datasets, signatures);
# rtml declares serving inputs as doubles itself, so the hint is noise in every run.
warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
# MLflow 3 calls pandas APIs that pandas 4 will change; the warning is for MLflow, not users.
warnings.filterwarnings("ignore", category=Pandas4Warning, module="mlflow")


class TrackingError(RtmlError):
    """The MLflow tracking server or store cannot be used."""


def tracking_uri() -> str:
    configured = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if configured:
        return configured
    LOCAL_STORE.mkdir(parents=True, exist_ok=True)
    return local_tracking_uri()


def local_tracking_uri() -> str:
    return f"sqlite:///{(LOCAL_STORE / 'mlflow.db').resolve()}"


def use_tracking() -> str:
    """Point MLflow at rtml's tracking URI and return it."""
    # MLflow's own download bars would interleave with rtml's output; usage telemetry would
    # try the network from training hosts. Both stay as the user set them, if set.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


def check_reachable(uri: str) -> None:
    """Fail fast, naming the URI, when a tracking *server* does not answer.

    MLflow's client would retry with backoff for minutes before giving up.
    """
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=REACH_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # it answered: auth or a proxy in front; MLflow's own calls say more
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {redact(uri)}: {reason}",
            hint="check MLFLOW_TRACKING_URI and that the server is running",
        ) from exc


def experiment_id(name: str) -> str:
    """The experiment named after the model, created on first use."""
    try:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        location = None
        if root := os.environ.get("RTML_ARTIFACT_ROOT", "").strip():
            location = f"{root.rstrip('/')}/{name}"  # e.g. s3://bucket/mlflow (client-side S3)
        elif mlflow.get_tracking_uri() == local_tracking_uri():
            # (Not "MLFLOW_TRACKING_URI is unset": mlflow.set_tracking_uri sets it.)
            location = (LOCAL_STORE / "mlartifacts" / name).resolve().as_uri()
        return str(mlflow.create_experiment(name, artifact_location=location))
    except MlflowException as exc:
        raise TrackingError(
            f"MLflow at {mlflow.get_tracking_uri()} refused the experiment {name!r}: "
            f"{str(exc).splitlines()[0]}",
            hint="check MLFLOW_TRACKING_URI and that the tracking server is running",
        ) from exc


def log_params(params: dict[str, Any]) -> None:
    """``mlflow.log_params`` that tolerates params the run already holds.

    Under ``mlflow run`` MLflow logs the entry point's parameters as typed (e.g.
    ``algorithm=''`` for "the default"); MLflow refuses to change a param, so a
    resolved value that differs is logged as ``<name>_resolved`` instead.
    """
    run = mlflow.active_run()
    existing = MlflowClient().get_run(run.info.run_id).data.params if run else {}
    values = {key: str(value) for key, value in params.items()}
    renamed = {
        (f"{key}_resolved" if key in existing and existing[key] != value else key): value
        for key, value in values.items()
        if existing.get(key) != value
    }
    if renamed:
        mlflow.log_params(renamed)


def flat_config(config: ModelConfig) -> dict[str, str]:
    """The config as MLflow params: ``config.features.credit_score.default`` -> ``median``.

    Lists of named items are keyed by name (not index), so params line up across
    runs that add or reorder features. Long values are cut to MLflow's limit.
    """
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for index, item in enumerate(value):
                label = item.get("name") or "_x_".join(item.get("features", [])) or str(index)
                walk(f"{prefix}.{label}", {k: v for k, v in item.items() if k != "name"})
        elif value is not None and value != [] and value != {}:
            flat[prefix] = str(value)[:6000]

    walk("config", config.model_dump(mode="json", exclude={"source"}))
    return flat


def git_commit() -> str | None:
    """The checkout's commit, when rtml runs from a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None
