"""Registry commands: register, promote, traffic, status, retrain, pull."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from entrypoints.options import cache_options, configs_dir_option, open_cache
from entrypoints.train_cmd import summary
from ml.gate import compare
from ml.pulling import pull_version
from ml.registry import (
    parse_reference,
    parse_weights,
    register_run,
    set_alias,
    set_traffic,
    stage_alias,
    status,
    traffic,
)
from ml.retraining import retrain as retrain_model


@click.command("register")
@click.argument("run_id")
@click.option("--name", help="Registered model name; default: the run's model.")
def register(run_id: str, name: str | None) -> None:
    """Register the model of a finished rtml train run (as rtml train --register does).

    The version is tagged with the config version, framework, algorithm, data
    windows and test metrics.
    """
    version = register_run(run_id, name)
    click.echo(f"Registered {version.name} version {version.version} (run {run_id}).")


@click.command("promote")
@click.argument("model")
@click.argument("version")
@click.option("--alias", help="Alias to set: champion, challenger or any name.")
@click.option(
    "--stage",
    help="Legacy: Production (= --alias champion) or Staging (= --alias challenger). "
    "MLflow 3 deprecates stages.",
)
@click.option(
    "--if-better",
    is_flag=True,
    help="Move @champion only if VERSION beats the current champion on the same recent "
    "test window (both re-scored now); the comparison is logged.",
)
@click.option(
    "--margin",
    type=float,
    help="With --if-better: how much better it must be (default: the config's promotion.margin).",
)
def promote(
    model: str,
    version: str,
    alias: str | None,
    stage: str | None,
    if_better: bool,
    margin: float | None,
) -> None:
    """Point an alias of MODEL at VERSION (a number, or another alias such as challenger).

    \b
    Examples:
      rtml promote lender_match 3 --alias champion
      rtml promote lender_match challenger --alias champion --if-better --margin 0.002
    """
    if stage:
        alias = stage_alias(stage)
        click.echo(
            f"warning: MLflow 3 deprecates stages; --stage {stage} sets the alias @{alias}",
            err=True,
        )
    if not alias:
        raise click.UsageError("give --alias NAME (or the legacy --stage)")
    if if_better:
        if alias != "champion":
            raise click.UsageError("--if-better gates @champion only")
        gate = compare(model, version, margin)
        click.echo(gate.describe())
        if not gate.passed:
            click.echo("@champion stays where it is.")
            return
        version = gate.candidate
    target = set_alias(model, version, alias)
    click.echo(f"{model}@{alias} -> version {target.version}")


@click.command("traffic")
@click.argument("model")
@click.argument("weights", nargs=-1, required=True, metavar="ALIAS=PERCENT...")
def traffic_cmd(model: str, weights: tuple[str, ...]) -> None:
    """Set MODEL's A/B split between aliases, e.g. champion=90 challenger=10.

    Stored as the registered model's tag rtml.traffic; the routed endpoint of the
    prediction service follows it. Aliases must exist; percentages must add up to 100.
    """
    split = set_traffic(model, parse_weights(list(weights)))
    click.echo(f"{model} traffic: " + ", ".join(f"@{a} {w}%" for a, w in split.items()))


@click.command("status")
@click.argument("model")
def status_cmd(model: str) -> None:
    """Versions of MODEL with aliases, traffic, metrics and training dates."""
    registered, rows = status(model)
    split = traffic(registered)
    click.echo(
        f"{model}: aliases "
        + (", ".join(f"@{a} -> v{v}" for a, v in sorted(registered.aliases.items())) or "none")
    )
    click.echo("traffic: " + (", ".join(f"@{a} {w}%" for a, w in split.items()) or "none"))
    if not rows:
        return
    columns = [c for c in rows[0] if any(row[c] for row in rows)]
    widths = {c: max(len(c), *(len(str(row[c])) for row in rows)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


@click.command("retrain")
@click.argument("model")
@click.option("--version", help="Config version; default: newest.")
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Day the windows end (default: today).",
)
# MLproject passes "" for "today".
@click.option("--as-of-text", default="", hidden=True)
@cache_options
@configs_dir_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def retrain(
    model: str,
    version: str | None,
    as_of: datetime | None,
    as_of_text: str,
    no_cache: bool,
    cache_open_windows: bool,
    configs_dir: Path,
    quiet: bool,
) -> None:
    """Train MODEL on the most recent windows, register, gate, set the alias.

    What the daily timer runs (scripts/systemd/rtml-retrain@.timer). The config's
    promotion section says how: policy challenger (the new version becomes
    @challenger) or champion_if_better (it becomes @champion when it beats the
    champion on the same recent window by promotion.margin). A failure changes no
    alias.
    """
    result = retrain_model(
        model,
        version=version or None,
        configs_dir=configs_dir,
        as_of=as_of.date() if as_of else (date.fromisoformat(as_of_text) if as_of_text else None),
        cache=open_cache(no_cache),
        progress=not quiet,
    )
    click.echo(summary(model, result.trained))
    click.echo(f"gate: {result.gate.describe()}")
    click.echo(f"{model}@{result.alias} -> version {result.version}")


@click.command("pull")
@click.argument("reference", metavar="MODEL@ALIAS")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def pull(reference: str, dest: Path) -> None:
    """Download a version's model and config into DEST and check it loads and scores.

    MODEL@ALIAS (lender_match@champion) or MODEL/VERSION (lender_match/3). What a new
    serving host's setup script runs.
    """
    name, ref = parse_reference(reference)
    info = pull_version(name, ref, dest)
    click.echo(
        f"Pulled {name} version {info['version']} into {dest} "
        f"(loads and scores its {info['verified_rows']} example rows)."
    )
