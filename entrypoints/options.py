"""Options several commands share, so they read and behave the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ml.data.cache import Cache

F = TypeVar("F", bound=Callable[..., Any])


def cache_options(command: F) -> F:
    """``--no-cache`` and ``--cache-open-windows`` for commands that pull data."""
    command = click.option(
        "--cache-open-windows",
        is_flag=True,
        help="Also cache windows that end after today (their rows can still change).",
    )(command)
    return click.option(
        "--no-cache",
        is_flag=True,
        envvar="RTML_NO_CACHE",
        help="Query the database every time and leave the local cache alone "
        "(cache folder: $RTML_CACHE_DIR, default var/cache).",
    )(command)


def open_cache(no_cache: bool) -> Cache | None:
    return None if no_cache else Cache()


configs_dir_option = click.option(
    "--configs-dir",
    default="configs",
    show_default=True,
    envvar="RTML_CONFIGS_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding <model>/<version>.json. Env: RTML_CONFIGS_DIR.",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a config value before validation (repeatable). PATH is dotted, features and "
    "crosses by name; VALUE is JSON or a plain string. "
    "E.g. --set features.annual_revenue.default=mean --set xgboost.num_boost_round=50",
)
