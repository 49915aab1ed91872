"""``rtml train``: train a model version with a framework and algorithm, tracked in MLflow."""

from __future__ import annotations

from pathlib import Path

import click

from entrypoints.options import cache_options, configs_dir_option, open_cache, set_option
from ml.config import find_config, load_config
from ml.frameworks import FRAMEWORKS, framework_class
from ml.training import TrainOptions, TrainResult, train_model

# Shown in the summary, in this order, when the run has them.
SUMMARY_METRICS = (
    "test_auc",
    "test_log_loss",
    "test_precision_at_1",
    "test_precision_at_3",
    "test_r2",
    "test_rmse",
    "test_mae",
    "train_auc",
    "train_r2",
)


@click.command("train")
@click.argument("model")
@click.option("--version", help="Config version (file name without .json); default: newest.")
@set_option
@click.option(
    "--framework",
    type=click.Choice(sorted(FRAMEWORKS)),
    default="xgboost",
    show_default=True,
    help="Library that trains the model.",
)
@click.option(
    "--algorithm",
    help="xgboost: gbtree (default), logistic, linear. vw: logistic (default for binary), "
    "linear. Binary tasks may use all; regression needs gbtree or linear.",
)
@click.option(
    "--stats",
    is_flag=True,
    help="Log (and print) statistics of every feature, train vs test, with drift (PSI) flagged.",
)
@click.option(
    "--register",
    is_flag=True,
    help="Register the trained model in the MLflow registry under the model's name.",
)
# MLproject passes every parameter as text: these take "true"/"false" for the flags above.
@click.option("--stats-flag", type=click.BOOL, default=False, hidden=True)
@click.option("--register-flag", type=click.BOOL, default=False, hidden=True)
@cache_options
@configs_dir_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def train(
    model: str,
    version: str | None,
    overrides: tuple[str, ...],
    framework: str,
    algorithm: str | None,
    stats: bool,
    register: bool,
    stats_flag: bool,
    register_flag: bool,
    no_cache: bool,
    cache_open_windows: bool,
    configs_dir: Path,
    quiet: bool,
) -> None:
    """Train MODEL (configs/MODEL/<version>.json) and log one MLflow run.

    Pulls the train and test windows (through the local cache), prepares and labels
    them with the model's class, fits the feature pipeline on the train window,
    trains, evaluates on the test window and logs params, metrics, plots, the
    config, the fitted pipeline and an MLflow pyfunc model to the experiment named
    after the model. MLFLOW_TRACKING_URI chooses the tracking server (default: a
    local store under var/).

    \b
    Examples:
      rtml train lender_match
      rtml train lender_match --framework vw --algorithm logistic --stats
      rtml train lender_match --set xgboost.params.max_depth=4 --register
    """
    path = find_config(model, version or None, configs_dir)  # "" from MLproject: newest
    config = load_config(path, [item for item in overrides if item])  # MLproject may pass ""
    chosen = algorithm or framework_class(framework).task_algorithms[config.task][0]
    result = train_model(
        config,
        path.stem,
        TrainOptions(
            framework=framework,
            algorithm=chosen,
            cache=open_cache(no_cache),
            cache_open_windows=cache_open_windows,
            stats=stats or stats_flag,
            register=register or register_flag,
            progress=not quiet,
        ),
    )
    click.echo(summary(config.name, result))


def summary(model: str, result: TrainResult) -> str:
    """The final table: what was trained, on how much data, how well, and where it is."""
    rows = ", ".join(f"{part} {count:,}" for part, count in result.rows.items())
    lines = [
        f"{model} {result.config_version}: {result.framework} {result.algorithm}",
        f"  rows                 {rows}",
    ]
    for name in SUMMARY_METRICS:
        if name in result.metrics:
            lines.append(f"  {name:<20} {result.metrics[name]:.4f}")
    seconds = result.seconds
    lines.append(
        f"  time                 {seconds.get('total_seconds', 0):.1f} s (data "
        f"{seconds.get('data_seconds', 0):.1f}, fit {seconds.get('fit_seconds', 0):.1f}, "
        f"MLflow {seconds.get('mlflow_seconds', 0):.1f})"
    )
    if result.shifted:
        lines.append(f"  drift                {', '.join(result.shifted)} (PSI >= 0.25)")
    lines.append(f"  run                  {result.run_id} (experiment {result.experiment_id})")
    lines.append(f"  model                {result.model_uri}")
    if result.registered_version:
        lines.append(f"  registered           {model} version {result.registered_version}")
    return "\n".join(lines)
