"""The end of ``rtml select``: the best combination, why, and the config that uses it.

The parent run gets the best trial's features and value, the all-features baseline,
a table of every trial, Optuna's optimization history and parameter importances,
and how much each group moves the metric; the best combination is written as
``configs/<model>/<version>-selected.json``, a config ``rtml train`` uses as is.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import optuna
import pandas as pd
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState

from ml.config import ModelConfig, load_config
from ml.selection.progress import describe_params
from ml.selection.space import GROUP_PARAM, SearchSpace, SelectionError, selected_raw
from ml.selection.study import BASELINE_ATTR
from ml.selection.trials import DUPLICATE_ATTR, FEATURES_ATTR, RUN_ATTR

log = logging.getLogger(__name__)

MIN_IMPORTANCE_TRIALS = 4


@dataclass
class SelectResult:
    study: str
    storage: str
    run_id: str
    experiment_id: str
    metric: str
    direction: str
    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    baseline_value: float | None
    features: list[str]
    dropped: list[str]
    config_path: Path
    version: str
    counts: dict[str, int] = field(default_factory=dict)


def best_trial(study: optuna.Study, direction: str) -> FrozenTrial | None:
    """The best finished trial; on a tie, the one with fewer features (then the earliest)."""
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    if not done:
        return None
    sign = -1.0 if direction == "maximize" else 1.0
    return min(
        done,
        key=lambda t: (sign * float(t.value), len(t.user_attrs.get(FEATURES_ATTR, [])), t.number),  # type: ignore[arg-type]
    )


def trial_counts(study: optuna.Study) -> dict[str, int]:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    duplicates = sum(1 for t in complete if DUPLICATE_ATTR in t.user_attrs)
    return {
        "complete": len(complete),
        "trained": len(complete) - duplicates,
        "duplicates": duplicates,
        "pruned": sum(1 for t in trials if t.state == TrialState.PRUNED),
        "failed": sum(1 for t in trials if t.state == TrialState.FAIL),
    }


def finish(
    study: optuna.Study,
    space: SearchSpace,
    raw: dict[str, Any],
    version: str,
    configs_dir: Path,
    storage: str,
) -> SelectResult:
    """Log the outcome on the active (parent) run and write the selected config."""
    best = best_trial(study, space.direction)
    if best is None:
        raise SelectionError(
            f"no trial of study {study.study_name!r} finished with a value",
            hint="run more trials (--trials), or look at the failed trials' runs in MLflow",
        )
    chosen = space.subset(space.choice(best.params))
    assert chosen is not None  # a trial with a value trained some features
    baseline = _baseline(study, space)
    config = space.config
    path = configs_dir / config.name / f"{version}-selected.json"
    note = (
        f"Features selected by rtml select from {version} (study {study.study_name}, trial "
        f"{best.number}, {space.metric} {best.value:.4f})."
    )
    _write_config(path, selected_raw(raw, chosen, note))
    features = [f.name for f in chosen.features]
    result = SelectResult(
        study=study.study_name,
        storage=storage,
        run_id=mlflow.active_run().info.run_id,  # type: ignore[union-attr]
        experiment_id=mlflow.active_run().info.experiment_id,  # type: ignore[union-attr]
        metric=space.metric,
        direction=space.direction,
        best_trial=best.number,
        best_value=float(best.value),  # type: ignore[arg-type]
        best_params=dict(best.params),
        baseline_value=None if baseline is None else float(baseline.value),  # type: ignore[arg-type]
        features=features,
        dropped=[f.name for f in config.features if f.name not in features],
        config_path=path,
        version=path.stem,
        counts=trial_counts(study),
    )
    _log(study, space, result, chosen, path)
    return result


def _baseline(study: optuna.Study, space: SearchSpace) -> FrozenTrial | None:
    """The finished trial of "every feature, as configured" (None for listed combinations)."""
    params = space.baseline_params()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.user_attrs.get(BASELINE_ATTR) or (params is not None and trial.params == params):
            return trial
    return None


def _write_config(path: Path, raw: dict[str, Any]) -> None:
    """Write atomically, after checking that the config loads (so rtml train can use it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(raw, out, indent=2)
            out.write("\n")
        load_config(Path(staging))
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)


def _log(
    study: optuna.Study, space: SearchSpace, result: SelectResult, chosen: ModelConfig, path: Path
) -> None:
    metric = space.metric
    metrics = {f"best_{metric}": result.best_value}
    if result.baseline_value is not None:
        metrics[f"baseline_{metric}"] = result.baseline_value
    metrics.update({f"trials_{k}": float(v) for k, v in result.counts.items()})
    mlflow.log_metrics(metrics)
    mlflow.set_tags(
        {
            "rtml.best_trial": str(result.best_trial),
            "rtml.selected_config": str(path),
            "rtml.dropped": ", ".join(result.dropped)[:5000] or "-",
        }
    )
    best = {
        "trial": result.best_trial,
        metric: result.best_value,
        f"baseline_{metric}": result.baseline_value,
        "params": result.best_params,
        "features": result.features,
        "crosses": [c.cross_name for c in chosen.crosses],
        "dropped": result.dropped,
        "config": str(path),
    }
    mlflow.log_dict(best, "selection/best.json")
    mlflow.log_dict(json.loads(path.read_text()), "selection/selected_config.json")
    mlflow.log_table(trials_table(study), "selection/trials.json")
    _log_plots(study, space)


def trials_table(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "value": t.value,
                "choice": describe_params(t.params) if t.params else "",
                "n_features": len(t.user_attrs.get(FEATURES_ATTR, [])),
                "duplicate_of": t.user_attrs.get(DUPLICATE_ATTR),
                "seconds": seconds,
                "run_id": t.user_attrs.get(RUN_ATTR),
            }
        )
    return pd.DataFrame(rows)


def _log_plots(study: optuna.Study, space: SearchSpace) -> None:
    from optuna.visualization import matplotlib as optuna_plots

    plots: dict[str, Callable[[optuna.Study], Any]] = {
        "optimization_history": optuna_plots.plot_optimization_history,
        "param_importances": optuna_plots.plot_param_importances,
    }
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < MIN_IMPORTANCE_TRIALS:
        del plots["param_importances"]  # too few trials: every importance would be equal
    for name, plot in plots.items():
        try:
            axes = plot(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            # e.g. importances need two finished trials that differ in a param
            log.info("selection: no %s plot (%s)", name.replace("_", " "), exc)
            continue
        figure = np.ravel(axes)[0].figure
        figure.set_size_inches(9, 6)
        figure.tight_layout()
        mlflow.log_figure(figure, f"plots/{name}.png")
        plt.close(figure)
    effects = group_effects(study, space)
    if effects:
        mlflow.log_dict(effects, "selection/group_effects.json")
        mlflow.log_figure(group_effect_figure(effects, space.metric), "plots/group_effects.png")


def group_effects(study: optuna.Study, space: SearchSpace) -> dict[str, float]:
    """Per group: mean metric of the trained combinations with it minus without it."""
    trained = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if DUPLICATE_ATTR not in t.user_attrs and t.value is not None
    ]
    effects = {}
    for group in space.groups:
        param = f"{GROUP_PARAM}{group}"
        if space.explicit:
            used = [group in space.choice(t.params).groups for t in trained]
        else:
            used = [bool(t.params.get(param)) for t in trained]
        with_group = [t.value for t, u in zip(trained, used, strict=True) if u]
        without = [t.value for t, u in zip(trained, used, strict=True) if not u]
        if with_group and without:
            effects[group] = float(np.mean(with_group) - np.mean(without))  # type: ignore[arg-type]
    return effects


def group_effect_figure(effects: dict[str, float], metric: str) -> Figure:
    names = sorted(effects, key=lambda g: effects[g])
    values = [effects[g] for g in names]
    figure = Figure(figsize=(8.0, max(3.0, 0.45 * len(names) + 1.5)), dpi=100)
    ax = figure.add_subplot()
    ax.barh(names, values, color=["#c44e52" if v < 0 else "#4c72b0" for v in values])
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"mean {metric} with the group minus without it")
    ax.set_title("What each feature group adds (trained combinations)")
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure
