"""``rtml config``: validate, show (resolved, with --set overrides) and export the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import click

from entrypoints.options import configs_dir_option, set_option
from ml.config import ModelConfig, find_config, json_schema, load_config


@click.group("config")
def config_group() -> None:
    """Model configs: configs/<model>/<version>.json.

    \b
    rtml config validate configs/lender_match/v1.json
    rtml config show lender_match --set features.credit_score.buckets='{"quantiles": 5}'
    rtml config schema > configs/schema.json
    """


@config_group.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@set_option
def validate(path: Path, overrides: tuple[str, ...]) -> None:
    """Check a config file; print every problem with its JSON path (exit code 2)."""
    config = load_config(path, list(overrides))
    click.echo(f"ok: {path} ({_summary(config)})")


@config_group.command("show")
@click.argument("model")
@click.option(
    "--version", "version", help="Config version (file name without .json); default: newest."
)
@set_option
@configs_dir_option
def show(model: str, version: str | None, overrides: tuple[str, ...], configs_dir: Path) -> None:
    """Print MODEL's resolved config: defaults filled in, --set overrides applied."""
    path = find_config(model, version, configs_dir)
    config = load_config(path, list(overrides))
    click.echo(json.dumps(config.model_dump(mode="json"), indent=2))
    click.echo(f"# {path}: {_summary(config)}", err=True)


@config_group.command("schema")
def schema() -> None:
    """Print the JSON Schema of model configs (checked in as configs/schema.json)."""
    click.echo(json.dumps(json_schema(), indent=2))


def _summary(config: ModelConfig) -> str:
    cross_only = sum(f.cross_only for f in config.features)
    return (
        f"{config.name}, {config.task}, {len(config.features)} features "
        f"({cross_only} cross-only), {len(config.crosses)} crosses"
    )
