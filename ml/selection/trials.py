"""One trial of ``rtml select``: a choice of features, trained and scored, as a nested run.

Every trial of a worker shares one :class:`TrialData` (the prepared examples and
the :class:`ColumnStore`), so a trial costs about one training. A combination
that was already evaluated is not trained again: the trial takes the earlier
trial's value and says so (``rtml.duplicate_of``). A choice that leaves no
feature is pruned.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import optuna
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from ml.config import ModelConfig
from ml.data.cache import Cache
from ml.datasets import ExampleSets, Windows
from ml.frameworks import FitContext, create_framework
from ml.frameworks.base import MatrixFramework
from ml.interrupts import InterruptWatch, stop_requested
from ml.model import Model
from ml.reporting import part_metrics
from ml.selection.columns import ColumnStore
from ml.selection.space import Choice, SearchSpace, SelectionError, combination_key

log = logging.getLogger(__name__)

COMBINATION_ATTR = "rtml.combination"
FEATURES_ATTR = "rtml.features"
DUPLICATE_ATTR = "rtml.duplicate_of"
METRICS_ATTR = "rtml.metrics"
RUN_ATTR = "rtml.run_id"
WORKER_ATTR = "rtml.worker"
WORKER = f"{socket.gethostname()}:{os.getpid()}"  # which process ran a trial
BATCH = 100  # MLflow's limit of params (and tags) per log_batch call
WAIT_POLL_S = 0.5
COMPLETE, RUNNING = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING


@dataclass
class TrialData:
    """What every trial of one worker reads: the examples and the fitted columns."""

    model: Model
    windows: Windows  # the pulled rows, handed on to worker processes
    sets: ExampleSets
    store: ColumnStore


@dataclass(frozen=True)
class TrialSetup:
    framework: str
    algorithm: str
    # XGBoost threads per trial unless the config sets them: 0 (all cores) for one worker,
    # a share of the cores when workers run side by side
    nthread: int
    cache: Cache | None  # for frameworks that write their own example files (VW)


class Objective:
    """Optuna's objective: suggest a choice, train it (unless already evaluated), score it."""

    def __init__(
        self,
        space: SearchSpace,
        data: TrialData,
        setup: TrialSetup,
        runs: TrialRuns,
        interrupts: InterruptWatch,
    ) -> None:
        self.space = space
        self.data = data
        self.setup = setup
        self.runs = runs
        self.interrupts = interrupts

    def __call__(self, trial: optuna.Trial) -> float:
        choice = self.space.suggest(trial)
        subset = self.space.subset(choice)
        if subset is None:
            raise optuna.TrialPruned("the choice leaves no feature to train on")
        key = combination_key(subset)
        trial.set_user_attr(COMBINATION_ATTR, key)
        trial.set_user_attr(WORKER_ATTR, WORKER)
        trial.set_user_attr(FEATURES_ATTR, [f.name for f in subset.features])
        earlier = _evaluated(trial.study, key, trial.number)
        if earlier is not None:
            trial.set_user_attr(DUPLICATE_ATTR, earlier.number)
            return float(earlier.value)  # type: ignore[arg-type]
        self.interrupts.check()  # Ctrl-C between trials: no new one
        run_id: str | None = None
        started = time.perf_counter()
        try:
            run_id = self.runs.start(trial, choice, subset)
            trial.set_user_attr(RUN_ATTR, run_id)
            metrics = self._train(subset)
            self.interrupts.check()  # training stopped early for Ctrl-C: not a result
            value = metrics.get(self.space.metric)
            if value is None:
                raise SelectionError(
                    f"selection.metric {self.space.metric!r} is not among the trial's metrics "
                    f"({', '.join(sorted(metrics))})",
                    hint="set selection.metric to one of them",
                )
            metrics["trial_seconds"] = time.perf_counter() - started
            if not math.isfinite(value):  # e.g. a custom metric undefined for this combination
                raise optuna.TrialPruned(f"{self.space.metric} is {value}")
            self.runs.finish(run_id, metrics)
        except BaseException as exc:
            error = self.interrupts.as_interrupt(exc)  # Ctrl-C inside XGBoost: its own error
            if run_id is not None:
                self.runs.fail(run_id, error)
            if error is not exc:
                raise error from exc
            raise
        trial.set_user_attr(METRICS_ATTR, metrics)
        return value

    def _train(self, subset: ModelConfig) -> dict[str, float]:
        if self.setup.framework == "xgboost" and "nthread" not in subset.xgboost.params:
            params = {**subset.xgboost.params, "nthread": self.setup.nthread}
            subset = subset.model_copy(
                update={"xgboost": subset.xgboost.model_copy(update={"params": params})}
            )
        data, sets = self.data, self.data.sets
        pipeline = data.store.pipeline(subset)
        framework = create_framework(self.setup.framework, self.setup.algorithm, subset, pipeline)
        try:
            if isinstance(framework, MatrixFramework):
                matrices = data.store.matrices(subset)
                framework.fit_matrices(
                    sets.train,
                    matrices["train"],
                    sets.validation,
                    matrices.get("validation"),
                    False,
                )
                scores = framework.score_matrix(matrices["test"])
            else:  # a framework that reads rows: it transforms them itself
                with tempfile.TemporaryDirectory(prefix="rtml-trial-") as scratch:
                    context = FitContext(self.setup.cache, Path(scratch), progress=False)
                    framework.fit(sets.train, sets.validation, context)
                    scores = framework.predict_examples(sets.test, context)
            metrics, custom = part_metrics(data.model, sets.test, scores)
            if custom is not None:
                for figure in custom.figures.values():
                    plt.close(figure)  # a trial logs numbers only
            info = framework.info()
        finally:
            framework.close()
        metrics.update(
            (f"fit_{k}", float(v))
            for k, v in info.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        )
        return metrics


def _evaluated(study: optuna.Study, key: str, number: int) -> optuna.trial.FrozenTrial | None:
    """The earliest finished trial that trained the same combination, if any.

    When another worker is training it right now, wait for its value rather than train
    the same thing twice (a worker that dies has its trial failed by the heartbeat).
    """
    while True:
        same = [
            t
            for t in study.get_trials(deepcopy=False, states=(COMPLETE, RUNNING))
            if t.user_attrs.get(COMBINATION_ATTR) == key and t.number < number
        ]
        done = [t for t in same if t.state == COMPLETE and t.value is not None]
        if done:
            return min(done, key=lambda t: t.number)
        waiting = any(t.state == RUNNING and DUPLICATE_ATTR not in t.user_attrs for t in same)
        if not waiting or stop_requested():
            return None
        time.sleep(WAIT_POLL_S)


class TrialRuns:
    """Each trained trial as an MLflow run nested under the selection's parent run."""

    def __init__(
        self,
        tracking_uri: str,
        experiment_id: str,
        parent_run_id: str,
        study_name: str,
        framework: str,
        algorithm: str,
    ) -> None:
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.study_name = study_name
        self.framework = framework
        self.algorithm = algorithm

    def start(self, trial: optuna.Trial, choice: Choice, subset: ModelConfig) -> str:
        name = f"trial-{trial.number}"
        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags={
                MLFLOW_PARENT_RUN_ID: self.parent_run_id,
                MLFLOW_RUN_NAME: name,
                "rtml.study": self.study_name,
                "rtml.trial": str(trial.number),
            },
        )
        features = [f.name for f in subset.features]
        params: dict[str, Any] = {
            "trial": trial.number,
            "framework": self.framework,
            "algorithm": self.algorithm,
            "n_features": len(features),
            "n_crosses": len(subset.crosses),
            "features": ",".join(features)[:6000],
            "crosses": ",".join(c.cross_name for c in subset.crosses)[:6000] or "-",
        }
        params.update({f"optuna.{k}": v for k, v in trial.params.items()})
        self._log(run.info.run_id, params=params)
        return str(run.info.run_id)

    def finish(self, run_id: str, metrics: dict[str, float]) -> None:
        self._log(run_id, metrics=metrics)
        self.client.set_terminated(run_id, "FINISHED")

    def fail(self, run_id: str, exc: BaseException) -> None:
        try:
            self._log(run_id, tags={"rtml.error": f"{type(exc).__name__}: {exc}"[:5000]})
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            self.client.set_terminated(run_id, status)
        except Exception:  # noqa: BLE001 - the trial's own error matters more
            log.debug("could not record the failure on run %s", run_id, exc_info=True)

    def _log(
        self,
        run_id: str,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        now = int(time.time() * 1000)
        param_items = [Param(k, str(v)) for k, v in (params or {}).items()]
        tag_items = [RunTag(k, v) for k, v in (tags or {}).items()]
        metric_items = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
        for at in range(0, max(len(param_items), len(tag_items), len(metric_items), 1), BATCH):
            self.client.log_batch(
                run_id,
                metrics=metric_items[at : at + BATCH],
                params=param_items[at : at + BATCH],
                tags=tag_items[at : at + BATCH],
            )
