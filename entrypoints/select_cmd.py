"""``rtml select``: find the best feature combination of a model with an Optuna study."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from entrypoints.options import cache_options, configs_dir_option, open_cache
from ml.frameworks import FRAMEWORKS
from ml.selection import SelectOptions, SelectResult, select_features
from ml.selection.progress import bucket_choices


class OptionalNumber(click.ParamType):
    """A number, or '' for "the config's default" (MLproject passes every parameter)."""

    def __init__(self, kind: type[int] | type[float], minimum: float) -> None:
        self.kind = kind
        self.minimum = minimum
        self.name = kind.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value == "":
            return None
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a valid {self.name}", param, ctx)
        if number < self.minimum:
            self.fail(f"{value} is below {self.minimum:g}", param, ctx)
        return number


@click.command("select")
@click.argument("model")
@click.option("--version", help="Config version (file name without .json); default: newest.")
@click.option(
    "--framework",
    type=click.Choice(sorted(FRAMEWORKS)),
    default="xgboost",
    show_default=True,
    help="Library every trial trains with.",
)
@click.option("--algorithm", help="As for rtml train; default: the framework's first for the task.")
@click.option(
    "--trials",
    type=OptionalNumber(int, 1),
    help="Finished trials the study should hold (a rerun continues up to this); "
    "default: selection.trials.",
)
@click.option(
    "--timeout",
    type=OptionalNumber(float, 1e-9),
    help="Seconds after which no new trial starts; default: selection.timeout_seconds.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes on this machine sharing the study (needs --storage on a "
    "database server, e.g. postgresql://...).",
)
@click.option(
    "--storage",
    envvar="RTML_OPTUNA_STORAGE",
    help="Optuna storage URL; hosts pointing at the same one share the study. "
    "Default: sqlite:///var/optuna.db. Env: RTML_OPTUNA_STORAGE.",
)
@click.option(
    "--study",
    help="Study name; the same name continues the study. Default: "
    "<model>-<version>-<framework>-<algorithm>-<digest of the search space and setup>.",
)
@click.option("--seed", type=int, help="Seed of Optuna's sampler, for repeatable searches.")
@cache_options
@configs_dir_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def select(
    model: str,
    version: str | None,
    framework: str,
    algorithm: str | None,
    trials: int | None,
    timeout: float | None,
    workers: int,
    storage: str | None,
    study: str | None,
    seed: int | None,
    no_cache: bool,
    cache_open_windows: bool,
    configs_dir: Path,
    quiet: bool,
) -> None:
    """Find MODEL's best feature combination with Optuna, tracked in MLflow.

    The config's "selection" section groups features and says what to optimise:
    either listed combinations of groups (each evaluated once) or a search over
    every group in or out, optionally with alternative buckets. The data is pulled
    once (through the cache) and each feature's columns are built once; a trial
    trains on its combination's columns and is logged as a run nested under one
    parent run. A combination already evaluated is not trained again.

    The parent run logs the best combination, the all-features baseline, every
    trial, Optuna's optimization history and parameter importances, and what each
    group adds. The best combination is written as configs/MODEL/<version>-selected.json,
    which rtml train uses as it is.

    Rerunning the same command continues the study (Ctrl-C keeps finished trials).

    \b
    Examples:
      rtml select lender_match
      rtml select lender_match --trials 40 --timeout 600
      rtml select lender_match --workers 2 --storage postgresql://postgres@127.0.0.1/optuna
      rtml train lender_match --version v1-selected
    """
    result = select_features(
        model,
        version or None,
        SelectOptions(
            framework=framework,
            algorithm=algorithm or None,
            trials=trials,
            timeout=timeout,
            workers=workers,
            # MLproject passes --storage '' for "not given": the variable still applies then
            storage=storage or os.environ.get("RTML_OPTUNA_STORAGE") or None,
            study=study or None,
            seed=seed,
            cache=open_cache(no_cache),
            cache_open_windows=cache_open_windows,
            progress=not quiet,
            configs_dir=configs_dir,
        ),
    )
    click.echo(summary(model, result))


def summary(model: str, result: SelectResult) -> str:
    counts = result.counts
    lines = [
        f"{model}: feature selection, study {result.study}",
        f"  trials               {counts['complete']} finished ({counts['trained']} trained, "
        f"{counts['duplicates']} repeats not retrained), {counts['pruned']} pruned, "
        f"{counts['failed']} failed",
        f"  best                 trial {result.best_trial}: {result.metric} "
        f"{result.best_value:.4f}",
    ]
    if result.baseline_value is not None:
        gain = result.best_value - result.baseline_value
        lines.append(
            f"  all features         {result.metric} {result.baseline_value:.4f} "
            f"(best is {gain:+.4f})"
        )
    lines.append(f"  kept                 {len(result.features)} features")
    lines.append(f"  dropped              {', '.join(result.dropped) or '-'}")
    buckets = bucket_choices(result.best_params)
    if buckets:
        lines.append(f"  buckets              {', '.join(buckets)}")
    lines.append(f"  config               {result.config_path}")
    lines.append(f"  run                  {result.run_id} (experiment {result.experiment_id})")
    lines.append(f"  storage              {result.storage}")
    lines.append(f"  train it             rtml train {model} --version {result.version}")
    return "\n".join(lines)
