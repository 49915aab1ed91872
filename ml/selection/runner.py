"""``rtml select``: an Optuna study over a model's feature combinations, tracked in MLflow.

    config + selection section -> pull the windows once (cache) -> examples + column store
    -> study (created, or continued when the same one exists) -> trials, in this process
    or in K spawned workers sharing the storage, each a nested MLflow run
    -> parent run: best combination, plots, trials table -> <version>-selected.json

The parent run ends FINISHED (also when the time budget stopped the study), KILLED on
Ctrl-C, FAILED on an error; finished trials stay in the study either way, so rerunning
the same command continues it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import optuna
from botocore.exceptions import BotoCoreError, ClientError
from mlflow.exceptions import MlflowException
from optuna.trial import TrialState

from ml.config import CONFIGS_DIR, config_versions, find_config, load_config
from ml.config.loading import read_json
from ml.data.cache import Cache
from ml.data.sources import open_source, source_url
from ml.data.urls import redact
from ml.datasets import pull_windows
from ml.frameworks import check_choice, framework_class
from ml.interrupts import as_interrupt
from ml.model import create_model
from ml.selection.report import SelectResult, finish
from ml.selection.space import SearchSpace
from ml.selection.study import (
    DONE,
    check_workers,
    default_study_name,
    make_sampler,
    open_storage,
    open_study,
    remaining_trials,
    retry_failed,
    shares,
    storage_url,
)
from ml.selection.trials import TrialData
from ml.selection.workers import (
    TrialPrinter,
    WorkerJob,
    run_trials,
    run_workers,
    trial_data,
    write_windows,
)
from ml.tracking import check_reachable, experiment_id, log_params, use_tracking
from ml.training import record_failure, store_error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelectOptions:
    framework: str = "xgboost"
    algorithm: str | None = None
    trials: int | None = None  # default: the config's selection.trials
    timeout: float | None = None  # seconds; default: selection.timeout_seconds
    workers: int = 1
    storage: str | None = None  # Optuna storage URL; default sqlite:///var/optuna.db
    study: str | None = None  # default: named after model, version, framework and setup
    seed: int | None = None
    cache: Cache | None = None
    cache_open_windows: bool = False
    progress: bool = True
    configs_dir: Path = CONFIGS_DIR


def select_features(model_name: str, version: str | None, options: SelectOptions) -> SelectResult:
    """Run (or continue) the selection study; see the module docstring."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # rtml prints its own line per trial
    path = find_config(
        model_name,
        version or _searchable_version(model_name, options.configs_dir),
        options.configs_dir,
    )
    config = load_config(path)
    space = SearchSpace(config)
    algorithm = (
        options.algorithm or framework_class(options.framework).task_algorithms[config.task][0]
    )
    check_choice(options.framework, algorithm, config)
    url = storage_url(options.storage)
    check_workers(url, options.workers)
    storage = open_storage(url)  # before any data is pulled: a bad URL fails in seconds
    check_reachable(use_tracking())
    experiment = None if os.environ.get("MLFLOW_RUN_ID") else experiment_id(config.name)
    with mlflow.start_run(
        experiment_id=experiment, run_name=f"select-{options.framework}-{algorithm}"
    ) as parent:
        try:
            study, data = _prepare(path, space, algorithm, storage, options)
            target = options.trials or space.trials
            log_params(
                {
                    "model": config.name,
                    "config_version": path.stem,
                    "framework": options.framework,
                    "algorithm": algorithm,
                    "study": study.study_name,
                    "storage": redact(url),
                    "metric": space.metric,
                    "direction": space.direction,
                    "trials": target,
                    "timeout_seconds": _timeout(options, space) or "none",
                    "workers": options.workers,
                    "sampler": type(study.sampler).__name__,
                    "space_size": space.size(),
                }
            )
            _run(path, space, study, data, target, algorithm, url, parent.info, options)
            return finish(
                study, space, read_json(path), path.stem, options.configs_dir, redact(url)
            )
        except BaseException as exc:
            error = as_interrupt(exc)
            record_failure(error)
            if error is not exc:
                raise error from exc
            if isinstance(exc, MlflowException | BotoCoreError | ClientError):
                raise store_error(exc) from exc
            raise


def _searchable_version(model: str, configs_dir: Path) -> str | None:
    """The newest version with a selection section: not the ``-selected`` one a previous
    select wrote (it has none), so rerunning the same command continues the study."""
    find_config(model, None, configs_dir)  # a clear error for an unknown model
    for candidate in reversed(config_versions(model, configs_dir)):
        if "selection" in read_json(configs_dir / model / f"{candidate}.json"):
            return candidate
    return None


def _timeout(options: SelectOptions, space: SearchSpace) -> float | None:
    return options.timeout or space.selection.timeout_seconds


def _prepare(
    path: Path,
    space: SearchSpace,
    algorithm: str,
    storage: optuna.storages.RDBStorage,
    options: SelectOptions,
) -> tuple[optuna.Study, TrialData]:
    """Pull the windows, build the trial data, and open the study they belong to."""
    config = space.config
    model = create_model(config)
    with open_source(source_url(config.source), progress=options.progress) as source:
        windows = pull_windows(
            model, source, cache=options.cache, cache_open_windows=options.cache_open_windows
        )
    data = trial_data(model, windows, options.framework, algorithm)
    settings = config.model_dump(mode="json", exclude={"description", "overrides", "selection"})
    setup = {
        "config": hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16],
        "framework": options.framework,
        "algorithm": algorithm,
        "data": [data.sets.train.key, data.sets.test.key],
    }
    name = options.study or default_study_name(
        f"{config.name}-{path.stem}-{options.framework}-{algorithm}", space, setup
    )
    target = options.trials or space.trials
    study = open_study(storage, name, space, setup, make_sampler(space, target, options.seed))
    return study, data


def _run(
    path: Path,
    space: SearchSpace,
    study: optuna.Study,
    data: TrialData,
    target: int,
    algorithm: str,
    url: str,
    parent: mlflow.entities.RunInfo,
    options: SelectOptions,
) -> None:
    """Run the trials still missing from the study, here or in worker processes."""
    remaining = remaining_trials(study, target)
    if remaining and (retried := retry_failed(study)):
        log.info("selection: %d interrupted or failed trial(s) queued to run again", retried)
    printer = TrialPrinter(space, target, options.progress)
    printer.seen.update(
        t.number for t in study.get_trials(deepcopy=False, states=(*DONE, TrialState.FAIL))
    )
    printer.bar.update(target - remaining)
    base = WorkerJob(
        index=0,
        config_path=str(path.resolve()),
        handoff="",
        storage_url=url,
        study_name=study.study_name,
        trials=remaining,
        target=target,
        timeout=_timeout(options, space),
        seed=options.seed,
        framework=options.framework,
        algorithm=algorithm,
        nthread=0 if options.workers == 1 else max(1, (os.cpu_count() or 1) // options.workers),
        cache_root=str(options.cache.root) if options.cache else None,
        tracking_uri=mlflow.get_tracking_uri(),
        experiment_id=parent.experiment_id,
        parent_run_id=parent.run_id,
    )
    try:
        if not remaining:
            log.info(
                "selection: study %s already holds %d finished trials; nothing to run "
                "(raise --trials to run more)",
                study.study_name,
                target,
            )
            return
        if options.workers == 1:
            run_trials(base, space, data, study, on_trial=lambda s, _: printer.update(s))
            return
        with tempfile.TemporaryDirectory(prefix="rtml-select-") as handoff:
            write_windows(data.windows, Path(handoff))
            jobs = [
                WorkerJob(**{**base.__dict__, "index": i, "handoff": handoff, "trials": share})
                for i, share in enumerate(shares(remaining, options.workers))
                if share
            ]
            run_workers(jobs, study, printer.update)
    finally:
        printer.close()
