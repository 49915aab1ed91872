"""What a training run writes to MLflow besides params: metrics, plots, stats, the model.

Called inside an active run by :mod:`ml.training`.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

import ml
from ml.datasets import call_model
from ml.evaluation import binary_metrics, calibration_table, regression_metrics
from ml.features.fitted import FittedPipeline
from ml.features.xgb import native_layout
from ml.frameworks.base import Examples, Framework
from ml.model import Evaluation, Model
from ml.plots import (
    calibration_figure,
    importance_figure,
    precision_recall_figure,
    predicted_vs_actual_figure,
    residuals_figure,
    roc_curve_figure,
)
from ml.pyfunc import BUNDLE, write_bundle

if TYPE_CHECKING:
    from ml.datasets import Windows
    from ml.training import TrainOptions

log = logging.getLogger(__name__)

PYFUNC_CODE = Path(ml.__file__).parent / "pyfunc_model.py"
INPUT_EXAMPLE_ROWS = 5
SIGNATURE_ROWS = 2000
# What the pyfunc model imports when it scores: pinned to the versions it was trained with.
RUNTIME_PACKAGES = (
    "mlflow",
    "pandas",
    "numpy",
    "pyarrow",
    "scipy",
    "pydantic",
    "xxhash",
    "sqlalchemy",
)
FRAMEWORK_PACKAGES = {"xgboost": "xgboost", "vw": "vowpalwabbit"}


def part_metrics(
    model: Model, part: Examples, scores: np.ndarray
) -> tuple[dict[str, float], Evaluation | None]:
    """Standard and custom metrics of one part, named ``<part>_<metric>``, logging nothing;
    plus the model's own evaluation (its tables and figures are the caller's to log)."""
    prefix = f"{part.name}_"
    if model.config.task == "binary":
        metrics = binary_metrics(part.labels, scores, groups=_groups(model, part))
    else:
        metrics = regression_metrics(part.labels, scores)
    result = {prefix + key: float(value) for key, value in metrics.items()}
    custom = call_model(
        model, "evaluate", model.evaluate, part.name, part.rows, part.labels, scores
    )
    if not isinstance(custom, Evaluation):
        return result, None
    result.update({prefix + key: float(value) for key, value in custom.metrics.items()})
    return result, custom


def evaluate_part(
    model: Model, framework: Framework, part: Examples, scores: np.ndarray
) -> dict[str, float]:
    """Standard and custom metrics of one part (train/test), with its plots logged."""
    result, custom = part_metrics(model, part, scores)
    if part.name == "test":
        _log_plots(model, framework, part, scores)
    if custom is not None:
        for name, table in custom.tables.items():
            mlflow.log_table(table, f"evaluation/{part.name}_{name}.json")
        for name, figure in custom.figures.items():
            mlflow.log_figure(figure, f"evaluation/{part.name}_{name}.png")
    return result


def _groups(model: Model, part: Examples) -> np.ndarray | None:
    column = model.entity_column
    if column is None or column not in part.rows.columns:
        return None
    groups = part.rows[column].to_numpy()
    # One row per entity (no ranking): per-entity metrics would only repeat AUC.
    return groups if len(pd.unique(groups)) < len(groups) else None


def _log_plots(model: Model, framework: Framework, part: Examples, scores: np.ndarray) -> None:
    if model.config.task == "binary":
        mlflow.log_figure(roc_curve_figure(part.labels, scores), "plots/roc_test.png")
        mlflow.log_figure(precision_recall_figure(part.labels, scores), "plots/pr_test.png")
        if np.all((scores >= 0) & (scores <= 1)):
            mlflow.log_figure(calibration_figure(part.labels, scores), "plots/calibration_test.png")
            mlflow.log_table(calibration_table(part.labels, scores), "evaluation/calibration.json")
    else:
        mlflow.log_figure(
            predicted_vs_actual_figure(part.labels, scores), "plots/predicted_vs_actual_test.png"
        )
        mlflow.log_figure(residuals_figure(part.labels, scores), "plots/residuals_test.png")
    importance = framework.importance()
    if importance:
        kind = (
            "total gain"
            if framework.name == "xgboost" and framework.algorithm == "gbtree"
            else "weight"
        )
        mlflow.log_figure(
            importance_figure(importance, f"Feature importance ({framework.name}, {kind})"),
            "plots/importance.png",
        )
        mlflow.log_dict(importance, "evaluation/importance.json")


def log_stats(
    config: Any, pipeline: FittedPipeline, windows: Windows, train: Examples, test: Examples
) -> list[str]:
    """Feature statistics for train and test, raw and transformed; returns shifted names."""
    from ml.features.xgb import to_native
    from ml.stats import compute_stats

    raw = {state.column: state.kind for state in pipeline.features}
    names, kinds = native_layout(pipeline)
    report = compute_stats(
        train.rows,
        test.rows,
        raw,
        transformed_train=to_native(pipeline, train.rows),
        transformed_test=to_native(pipeline, test.rows),
        transformed_names=names,
        transformed_kinds=kinds,
    )
    print(report.table(), file=sys.stderr)
    mlflow.log_text(report.to_json(), "stats/feature_stats.json")
    mlflow.log_text(report.to_html(), "stats/feature_stats.html")
    shifted = report.shifted()
    mlflow.log_metric("stats_shifted_features", len(shifted))
    if shifted:
        log.warning("warning: train and test differ (PSI >= 0.25) in: %s", ", ".join(shifted))
    return shifted


def log_model(
    model: Model,
    pipeline: FittedPipeline,
    framework: Framework,
    test_rows: pd.DataFrame,
    scratch: Path,
    options: TrainOptions,
) -> str:
    """Log the MLflow pyfunc model (models-from-code + plain-file bundle); return its URI."""
    config = model.config
    bundle = write_bundle(scratch / BUNDLE, config, pipeline, framework)
    mlflow.log_dict(config.model_dump(mode="json"), "config.json")
    mlflow.log_text(pipeline.to_json(), "pipeline.json")
    label = config.data.label.column if config.data.label else None
    inputs = test_rows.drop(columns=[label] if label in test_rows.columns else [])
    # The signature comes from a realistic sample (MLflow's advice): columns that have
    # missing values there are typed as doubles, so serving rows with gaps pass.
    sample = inputs.head(SIGNATURE_ROWS).reset_index(drop=True)
    signature = infer_signature(sample, framework.predict(model.prepare(sample)))
    example = sample.head(INPUT_EXAMPLE_ROWS)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(PYFUNC_CODE),
        artifacts={BUNDLE: str(bundle)},
        code_paths=_code_paths(model),
        signature=signature,
        input_example=example,
        pip_requirements=_requirements(framework.name),
    )
    return str(info.model_uri)


def _code_paths(model: Model) -> list[str]:
    """rtml's package, and the model's own module when it lives outside it."""
    paths = [str(Path(ml.__file__).parent)]
    module = sys.modules[type(model).__module__]
    if module.__file__ and not type(model).__module__.startswith("ml."):
        paths.append(module.__file__)
    return paths


def _requirements(framework: str) -> list[str]:
    pins = []
    for package in (*RUNTIME_PACKAGES, FRAMEWORK_PACKAGES[framework]):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins
