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

import copy
import dataclasses
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
from mlflow.entities import RunInfo
from mlflow.exceptions import MlflowException
from optuna.exceptions import StorageInternalError
from sqlalchemy.exc import SQLAlchemyError

from ml.config import CONFIGS_DIR, config_versions, find_config, resolve
from ml.config.loading import read_json
from ml.data.cache import Cache
from ml.data.sources import open_source, source_url
from ml.data.urls import redact
from ml.datasets import pull_windows
from ml.frameworks import check_choice, framework_class
from ml.model import create_model
from ml.selection.progress import TrialPrinter
from ml.selection.report import SelectResult, finish
from ml.selection.space import SearchSpace
from ml.selection.study import (
    check_existing_study,
    check_workers,
    default_study_name,
    make_sampler,
    open_storage,
    open_study,
    remaining_trials,
    retry_failed,
    shares,
    storage_error,
    storage_url,
)
from ml.selection.trials import TrialData
from ml.selection.workers import WorkerJob, run_trials, run_workers, trial_data, write_windows
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
    # rtml prints a line per trial, and failures reach the user as one error (exit 2)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    path = find_config(
        model_name,
        version or _searchable_version(model_name, options.configs_dir),
        options.configs_dir,
    )
    selection = _Selection(path, options)
    check_reachable(use_tracking())
    config = selection.space.config
    experiment = None if os.environ.get("MLFLOW_RUN_ID") else experiment_id(config.name)
    with mlflow.start_run(
        experiment_id=experiment, run_name=f"select-{options.framework}-{selection.algorithm}"
    ) as parent:
        try:
            return selection.run(parent.info)
        except BaseException as exc:
            record_failure(exc)  # a trial interrupted inside XGBoost arrives as KeyboardInterrupt
            if isinstance(exc, MlflowException | BotoCoreError | ClientError):
                raise store_error(exc) from exc
            if isinstance(exc, StorageInternalError | SQLAlchemyError):
                raise storage_error(exc, selection.url) from exc
            raise


class _Selection:
    """One ``rtml select``: checked up front (config, framework, storage), then run."""

    def __init__(self, path: Path, options: SelectOptions) -> None:
        self.path = path
        self.options = options
        self.raw = read_json(path)  # read once: the selected config is this file, narrowed
        config = resolve(copy.deepcopy(self.raw), str(path))
        self.space = SearchSpace(config)
        # A sampler that tries every choice once stops when they are done: ask no more.
        self.target = min(options.trials or self.space.trials, self.space.size())
        cls = framework_class(options.framework)
        self.algorithm = options.algorithm or cls.task_algorithms[config.task][0]
        check_choice(options.framework, self.algorithm, config)
        self.url = storage_url(options.storage)
        check_workers(self.url, options.workers)
        self.storage = open_storage(self.url)  # before any data is pulled: fails in seconds
        if options.study:
            check_existing_study(self.storage, options.study, self.space)

    @property
    def timeout(self) -> float | None:
        return self.options.timeout or self.space.selection.timeout_seconds

    def run(self, parent: RunInfo) -> SelectResult:
        study, data = self._prepare()
        options, space = self.options, self.space
        log_params(
            {
                "model": space.config.name,
                "config_version": self.path.stem,
                "framework": options.framework,
                "algorithm": self.algorithm,
                "study": study.study_name,
                "storage": redact(self.url),
                "metric": space.metric,
                "direction": space.direction,
                "trials": self.target,
                "timeout_seconds": self.timeout or "none",
                "workers": options.workers,
                "sampler": type(study.sampler).__name__,
                "space_size": space.size(),
            }
        )
        self._trials(study, data, parent)
        return finish(study, space, self.raw, self.path.stem, options.configs_dir, redact(self.url))

    def _prepare(self) -> tuple[optuna.Study, TrialData]:
        """Pull the windows, build the trial data, and open the study they belong to."""
        config, options = self.space.config, self.options
        model = create_model(config)
        with open_source(source_url(config.source), progress=options.progress) as source:
            windows = pull_windows(
                model, source, cache=options.cache, cache_open_windows=options.cache_open_windows
            )
        data = trial_data(model, windows, options.framework, self.algorithm)
        settings = config.model_dump(mode="json", exclude={"description", "overrides", "selection"})
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        setup = {
            "config": digest[:16],
            "framework": options.framework,
            "algorithm": self.algorithm,
            "data": [data.sets.train.key, data.sets.test.key],
        }
        prefix = f"{config.name}-{self.path.stem}-{options.framework}-{self.algorithm}"
        name = options.study or default_study_name(prefix, self.space, setup)
        sampler = make_sampler(self.space, self.target, options.seed)
        return open_study(self.storage, name, self.space, setup, sampler), data

    def _trials(self, study: optuna.Study, data: TrialData, parent: RunInfo) -> None:
        """Run the trials still missing from the study, here or in worker processes."""
        options = self.options
        remaining = remaining_trials(study, self.storage, self.target)
        if not remaining:
            log.info(
                "selection: study %s already holds %d finished trials; nothing to run "
                "(raise --trials to run more)",
                study.study_name,
                self.target,
            )
            return
        if retried := retry_failed(study):
            log.info("selection: %d interrupted or failed trial(s) queued to run again", retried)
        job = WorkerJob(
            index=0,
            config_path=str(self.path.resolve()),
            handoff="",
            storage_url=self.url,
            study_name=study.study_name,
            trials=remaining,
            target=self.target,
            timeout=self.timeout,
            seed=options.seed,
            framework=options.framework,
            algorithm=self.algorithm,
            nthread=0 if options.workers == 1 else max(1, (os.cpu_count() or 1) // options.workers),
            cache_root=str(options.cache.root) if options.cache else None,
            tracking_uri=mlflow.get_tracking_uri(),
            experiment_id=parent.experiment_id,
            parent_run_id=parent.run_id,
        )
        printer = TrialPrinter(self.space, self.target, options.progress)
        printer.skip_finished(study)
        try:
            if options.workers == 1:
                run_trials(job, self.space, data, study, on_trial=lambda s, _: printer.update(s))
                return
            with tempfile.TemporaryDirectory(prefix="rtml-select-") as handoff:
                write_windows(data.windows, Path(handoff))
                jobs = [
                    dataclasses.replace(job, index=i, handoff=handoff, trials=share)
                    for i, share in enumerate(shares(remaining, options.workers))
                    if share
                ]
                run_workers(jobs, study, printer.update)
        finally:
            printer.close()


def _searchable_version(model: str, configs_dir: Path) -> str | None:
    """The newest version with a selection section: not the ``-selected`` one a previous
    select wrote (it has none), so rerunning the same command continues the study."""
    find_config(model, None, configs_dir)  # a clear error for an unknown model
    for candidate in reversed(config_versions(model, configs_dir)):
        if "selection" in read_json(configs_dir / model / f"{candidate}.json"):
            return candidate
    return None
