"""The ``rtml`` command line.

Each command is a thin shell around ``ml``: it parses options, calls the
framework and prints. Problems a user can fix arrive as :class:`ml.errors.RtmlError`
and are printed as one ``Error:`` line (plus a hint) with exit code 2.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ml import __version__
from ml.errors import RtmlError


class UserError(click.ClickException):
    """How click shows an RtmlError: ``Error: <what, where> (<how to fix>)``, exit code 2."""

    exit_code = RtmlError.exit_code


class RtmlGroup(click.Group):
    """A click group that turns RtmlError into a one-line message instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RtmlError as exc:
            raise UserError(str(exc)) from exc


@click.group(cls=RtmlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rtml")
def cli() -> None:
    """rtml: from a JSON model config to real-time predictions.

    Describe a tabular model as a JSON config plus a small Python subclass; rtml
    pulls the training data (Postgres, Snowflake or an embedded SQLite/DuckDB
    database), trains it with XGBoost or Vowpal Wabbit, tracks and promotes it
    in MLflow, and serves ranked predictions over HTTP.

    \b
    Start here:
      rtml demo         build the demo marketplace and run the main job on it
      rtml demo-data    (re)generate the demo lending-marketplace tables
      rtml config       validate and show model configs (configs/<model>/<version>.json)
      rtml train        train a model with XGBoost or VW, tracked in MLflow
      rtml select       find the best feature combination (Optuna), tracked in MLflow
      rtml promote      set @champion / @challenger (optionally only if better)
      rtml traffic      split traffic between aliases (A/B)
      rtml status       versions, aliases, traffic and metrics of a model
      rtml retrain      train on recent data, register, gate, promote (daily)
      rtml pull         download a version for a serving host, verified
      rtml cache        list or clear the local cache of query results

    Every command explains itself with --help. Errors you can fix exit with code 2.
    """


def _register_commands() -> None:
    from entrypoints.cache_cmd import cache_group
    from entrypoints.config_cmd import config_group
    from entrypoints.demo import demo, demo_data
    from entrypoints.registry_cmd import (
        promote,
        pull,
        register,
        retrain,
        status_cmd,
        traffic_cmd,
    )
    from entrypoints.select_cmd import select
    from entrypoints.serve_cmd import api_key, serve_cmd
    from entrypoints.train_cmd import train

    cli.add_command(demo_data)
    cli.add_command(demo)
    cli.add_command(config_group)
    cli.add_command(cache_group)
    cli.add_command(train)
    cli.add_command(select)
    for command in (register, promote, traffic_cmd, status_cmd, retrain, pull, serve_cmd, api_key):
        cli.add_command(command)


_register_commands()


def _show_progress_messages() -> None:
    """rtml's own log messages (cache hits, skipped steps) go to stderr as plain lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("ml", "entrypoints", "serving"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    # MLflow narrates routine steps at INFO ("Validating input example ..."); keep its warnings.
    logging.getLogger("mlflow").setLevel(logging.WARNING)


def main() -> None:
    _show_progress_messages()
    cli(prog_name="rtml")
