"""``rtml train``: one MLflow run from a config, a model subclass and a framework×algorithm.

    pull train/test windows (cache) -> prepare, label -> fit the feature pipeline on
    the train rows -> framework.fit (early stopping on the latest 10% of the train
    window when the framework uses it) -> score train and test -> metrics, custom
    evaluations, plots, stats -> MLflow: params, tags, inputs, artifacts, pyfunc model
    -> optionally register the version.

A run that fails ends FAILED (KILLED on Ctrl-C) with the error as a tag and an
artifact; nothing is registered unless the whole run finished.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import mlflow
from botocore.exceptions import BotoCoreError, ClientError
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from ml import __version__
from ml.config.models import ModelConfig
from ml.data.cache import Cache
from ml.data.sources import open_source, source_url
from ml.datasets import Windows, example_sets, pull_windows, window_params
from ml.features import FeaturePipeline
from ml.frameworks import FitContext, check_choice, create_framework, framework_class
from ml.frameworks.base import Examples, Framework
from ml.interrupts import InterruptWatch
from ml.model import Model, create_model
from ml.reporting import evaluate_part, log_model, log_stats
from ml.tracking import (
    TrackingError,
    check_reachable,
    experiment_id,
    flat_config,
    git_commit,
    log_params,
    use_tracking,
)

log = logging.getLogger(__name__)

SCHEMA_SAMPLE_ROWS = 1000


@dataclass(frozen=True)
class TrainOptions:
    framework: str
    algorithm: str
    cache: Cache | None = None
    cache_open_windows: bool = False
    stats: bool = False
    register: bool = False
    progress: bool = True
    today: date | None = None


@dataclass
class TrainResult:
    run_id: str
    experiment_id: str
    model_uri: str
    framework: str
    algorithm: str
    config_version: str
    metrics: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    registered_version: str | None = None
    shifted: list[str] = field(default_factory=list)


def train_model(config: ModelConfig, config_version: str, options: TrainOptions) -> TrainResult:
    """Train, evaluate and log one run; see the module docstring."""
    check_choice(options.framework, options.algorithm, config)  # before pulling data
    model = create_model(config)
    check_reachable(use_tracking())
    # Under `mlflow run`, MLflow made the run (in the experiment it was given): use that one.
    experiment = None if os.environ.get("MLFLOW_RUN_ID") else experiment_id(config.name)
    with mlflow.start_run(
        experiment_id=experiment, run_name=f"{options.framework}-{options.algorithm}"
    ) as run:
        experiment = run.info.experiment_id
        watch = InterruptWatch()
        try:
            with watch:
                result = _run(model, config_version, options, run.info.run_id, experiment)
        except BaseException as exc:
            error = watch.as_interrupt(exc)  # Ctrl-C inside XGBoost's callbacks is its own error
            record_failure(error)
            if error is not exc:
                raise error from exc
            if isinstance(exc, MlflowException | BotoCoreError | ClientError):
                raise store_error(exc) from exc
            raise
    if options.register:
        result.registered_version = _register(result, config)
    return result


def _run(
    model: Model, config_version: str, options: TrainOptions, run_id: str, experiment: str
) -> TrainResult:
    config = model.config
    timings: dict[str, float] = {}
    started = time.perf_counter()
    url = source_url(config.source)
    with open_source(url, progress=options.progress) as source:
        log_params(
            {
                "model": config.name,
                "config_version": config_version,
                "framework": options.framework,
                "algorithm": options.algorithm,
                "task": config.task,
                "source": source.description,
            }
        )
        description = source.description
        windows = pull_windows(
            model,
            source,
            cache=options.cache,
            cache_open_windows=options.cache_open_windows,
            today=options.today,
        )
    timings["data_seconds"] = time.perf_counter() - started
    log_params({**window_params(windows.split), **flat_config(config)})

    sets = example_sets(
        model, windows, hold_out_validation=holds_out_validation(options.framework, config)
    )
    train, validation, test = sets.train, sets.validation, sets.test
    rows = sets.rows()
    mlflow.set_tags(
        {
            **{f"rows.{part}": str(count) for part, count in rows.items()},
            "rtml.version": __version__,
            **({"git.commit": commit} if (commit := git_commit()) else {}),
        }
    )

    step = time.perf_counter()
    pipeline = FeaturePipeline(config).fit(train.rows, model_state=model.model_state(train.rows))
    framework = create_framework(options.framework, options.algorithm, config, pipeline)
    with tempfile.TemporaryDirectory(prefix="rtml-train-") as scratch:
        context = FitContext(options.cache, Path(scratch), options.progress)
        framework.fit(train, validation, context)
        timings["fit_seconds"] = time.perf_counter() - step
        step = time.perf_counter()
        scores = {part.name: framework.predict_examples(part, context) for part in (train, test)}
        timings["predict_seconds"] = time.perf_counter() - step
        step = time.perf_counter()
        metrics = _evaluate_and_log(model, framework, {"train": train, "test": test}, scores)
        shifted = log_stats(config, pipeline, windows, train, test) if options.stats else []
        log_params({f"{options.framework}.{k}": v for k, v in framework.params().items()})
        model_uri = log_model(
            model, pipeline, framework, windows.test.frame, Path(scratch), options
        )
        _log_inputs(windows, config, description)
        framework.close()
    timings["mlflow_seconds"] = time.perf_counter() - step
    timings["total_seconds"] = time.perf_counter() - started
    mlflow.log_metrics({**metrics, **{f"time_{k}": v for k, v in timings.items()}})
    return TrainResult(
        run_id=run_id,
        experiment_id=experiment,
        model_uri=model_uri,
        framework=options.framework,
        algorithm=options.algorithm,
        config_version=config_version,
        metrics=metrics,
        rows=rows,
        seconds=timings,
        shifted=shifted,
    )


def holds_out_validation(framework: str, config: ModelConfig) -> bool:
    """Whether training holds out the end of the train window for early stopping."""
    return framework_class(framework).uses_validation and bool(config.xgboost.early_stopping_rounds)


def _evaluate_and_log(
    model: Model, framework: Framework, parts: dict[str, Examples], scores: dict[str, Any]
) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, part in parts.items():
        metrics.update(evaluate_part(model, framework, part, scores[name]))
    metrics.update({f"fit_{k}": float(v) for k, v in framework.info().items() if _number(v)})
    return metrics


def _log_inputs(windows: Windows, config: ModelConfig, source: str) -> None:
    """The train and test rows as MLflow datasets: where they came from, schema, row count.

    A metadata dataset, not ``from_pandas``: MLflow's pandas digest and schema look at
    every value in Python (about 5 s per 100k rows); rtml's data key already says what
    the rows are (source, query, parameters) and a sample gives the schema.
    """
    for context, pulled, window in (
        ("training", windows.train, windows.split.train),
        ("testing", windows.test, windows.split.test),
    ):
        frame = pulled.frame
        origin = CodeDatasetSource({"source": source, "window": str(window)})
        dataset = MetaDataset(  # type: ignore[abstract]  # MLflow declares profile abstract; it is optional
            origin,
            name=f"{config.name}-{context}",
            digest=pulled.key[:20],
            schema=infer_signature(frame.head(SCHEMA_SAMPLE_ROWS)).inputs,
        )
        mlflow.log_input(dataset, context=context, tags={"rows": str(len(frame))})


def store_error(exc: BaseException) -> TrackingError:
    """MLflow or the artifact store (S3) refused what the run logs: one clear line."""
    reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return TrackingError(
        f"MLflow at {mlflow.get_tracking_uri()} could not store the run: {reason[:300]}",
        hint="check the tracking server, its artifact store (bucket exists, credentials) "
        "and MLFLOW_S3_ENDPOINT_URL",
    )


def record_failure(exc: BaseException) -> None:
    """Leave the error on the run; the start_run block then ends it FAILED (or KILLED)."""
    try:
        mlflow.set_tag("rtml.error", f"{type(exc).__name__}: {exc}"[:5000])
        mlflow.log_text("".join(traceback.format_exception(exc)), "error.txt")
        if isinstance(exc, KeyboardInterrupt):
            mlflow.end_run(status="KILLED")
    except Exception:  # noqa: BLE001 - the original error matters more than the record
        log.debug("could not record the failure on the run", exc_info=True)


def _register(result: TrainResult, config: ModelConfig) -> str:
    from ml.registry import register_run  # the registry is only needed with --register

    return str(register_run(result.run_id, config.name).version)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
