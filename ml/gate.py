"""The promotion gate: is a candidate version better than the champion on the same data?

Both versions are re-scored now, each through its MLflow pyfunc on rows its own
config's query returns for the **candidate's** test window (the most recent data
the candidate was evaluated on), so neither side is judged on the window it was
trained on or by numbers logged months apart. Test AUC for binary models, R² for
regression. The comparison is logged as an MLflow run in the model's experiment
and as tags on the candidate version.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from tempfile import TemporaryDirectory

import mlflow
import numpy as np
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from sklearn.metrics import r2_score, roc_auc_score

from ml.config.loading import load_config
from ml.config.models import ModelConfig
from ml.data.fetch import pull_window
from ml.data.sources import open_source, source_url
from ml.data.windows import TimeWindow
from ml.datasets import call_model, check_labels
from ml.model import create_model
from ml.registry import RegistryError, model_version, registered_model, registry_client
from ml.tracking import experiment_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateResult:
    model: str
    candidate: str
    champion: str | None  # None: there is no champion yet, so the candidate passes
    metric: str
    candidate_score: float
    champion_score: float | None
    margin: float
    window: str
    rows: int
    passed: bool

    def describe(self) -> str:
        if self.champion is None:
            return f"{self.model} has no @champion: version {self.candidate} passes the gate"
        verdict = "better" if self.passed else "not better"
        return (
            f"{self.metric} on {self.window} ({self.rows:,} rows): candidate v{self.candidate} "
            f"{self.candidate_score:.4f} vs champion v{self.champion} "
            f"{self.champion_score:.4f} (margin {self.margin:g}): {verdict}"
        )


def version_config(client: MlflowClient, version: ModelVersion) -> ModelConfig:
    """The resolved config a version was trained with (its run's config.json)."""
    if not version.run_id:
        raise RegistryError(f"version {version.version} of {version.name} has no run")
    with TemporaryDirectory(prefix="rtml-config-") as folder:
        path = client.download_artifacts(version.run_id, "config.json", folder)
        return load_config(Path(path))


def score_on_window(
    client: MlflowClient, version: ModelVersion, window: TimeWindow, today: date | None = None
) -> tuple[float, int]:
    """The version's metric on ``window``, scored now through its pyfunc."""
    config = version_config(client, version)
    model = create_model(config)
    with open_source(source_url(config.source)) as source:
        sql = call_model(model, "query", model.query, window)
        rows = pull_window(
            source,
            sql,
            window,
            time_column=config.windows.time_column,
            cache=None,
            label="gate",
            today=today,
        ).frame
    labels = check_labels(
        call_model(model, "label", model.label, model.prepare(rows)), config.task, "gate", model
    )
    label_column = config.data.label.column if config.data.label else None
    inputs = rows.drop(columns=[label_column] if label_column in rows.columns else [])
    scorer = mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    scores = np.asarray(scorer.predict(inputs), dtype=np.float64)
    if config.task == "binary":
        return float(roc_auc_score(labels, scores)), len(rows)
    return float(r2_score(labels, scores)), len(rows)


def compare(
    name: str, candidate: str, margin: float | None = None, today: date | None = None
) -> GateResult:
    """Gate version ``candidate`` of ``name`` against its current @champion."""
    client = registry_client()
    model = registered_model(client, name)
    challenger = model_version(client, name, candidate)
    config = version_config(client, challenger)
    margin = config.promotion.margin if margin is None else margin
    metric = "test_auc" if config.task == "binary" else "test_r2"
    window = _test_window(challenger)
    champion_version = model.aliases.get("champion")
    # The first version, or re-gating the champion itself, passes without a contest.
    unopposed = champion_version is None or str(champion_version) == str(challenger.version)
    rows, champion_score = 0, None
    if unopposed:
        candidate_score = float(challenger.tags.get(metric, "nan"))
    else:
        champion = client.get_model_version(name, str(champion_version))
        candidate_score, rows = score_on_window(client, challenger, window, today)
        champion_score, _ = score_on_window(client, champion, window, today)
    result = GateResult(
        model=name,
        candidate=str(challenger.version),
        champion=None if unopposed else str(champion_version),
        metric=metric,
        candidate_score=candidate_score,
        champion_score=champion_score,
        margin=margin,
        window=str(window),
        rows=rows,
        passed=unopposed or candidate_score >= (champion_score or 0.0) + margin,
    )
    _log(client, result)
    return result


def _test_window(version: ModelVersion) -> TimeWindow:
    try:
        start, end = version.tags["test_start"], version.tags["test_end"]
    except KeyError:
        raise RegistryError(
            f"version {version.version} of {version.name} has no test window tags",
            hint="register versions with rtml register or rtml train --register",
        ) from None
    return TimeWindow(date.fromisoformat(start), date.fromisoformat(end))


def _log(client: MlflowClient, result: GateResult) -> None:
    """The comparison as a run ("gate v<candidate>") and as tags on the candidate version."""
    with mlflow.start_run(
        experiment_id=experiment_id(result.model), run_name=f"gate v{result.candidate}"
    ):
        mlflow.set_tag("rtml.kind", "gate")
        mlflow.log_params(
            {
                "candidate": result.candidate,
                "champion": result.champion or "none",
                "metric": result.metric,
                "margin": result.margin,
                "window": result.window,
            }
        )
        mlflow.log_metrics(
            {"candidate_score": result.candidate_score, "passed": float(result.passed)}
            | (
                {"champion_score": result.champion_score}
                if result.champion_score is not None
                else {}
            )
        )
        mlflow.log_dict(asdict(result), "gate.json")
    client.set_model_version_tag(
        result.model, result.candidate, "rtml.gate", "passed" if result.passed else "failed"
    )
    client.set_model_version_tag(
        result.model, result.candidate, "rtml.gate.detail", json.dumps(asdict(result))[:5000]
    )
    log.info("gate: %s", result.describe())
