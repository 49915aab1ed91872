"""The MLflow model registry as rtml uses it: versions, aliases, the A/B traffic split.

Promotion is an alias (``@champion``, ``@challenger``, any name); MLflow 3 deprecates
stages, so ``--stage Production|Staging`` only maps onto aliases. The traffic split
between aliases is a registered-model tag, so what is promoted and how traffic is
routed are both decided in MLflow (design decision 7).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ml.config.errors import did_you_mean
from ml.errors import RtmlError
from ml.tracking import check_reachable, use_tracking

log = logging.getLogger(__name__)

TRAFFIC_TAG = "rtml.traffic"
# Deprecated MLflow stages -> the aliases that replace them.
STAGE_ALIASES = {"production": "champion", "staging": "challenger"}
WINDOW_PARAMS = ("train_start", "train_end", "test_start", "test_end")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")


class RegistryError(RtmlError):
    """An unknown model, version or alias, or a registry change that is not allowed."""


def registry_client() -> MlflowClient:
    """A client on rtml's tracking URI, after checking a tracking server answers."""
    check_reachable(use_tracking())
    return MlflowClient()


# --- registering ----------------------------------------------------------------------


def register_run(run_id: str, name: str | None = None) -> ModelVersion:
    """Register the model a finished ``rtml train`` run logged, tagged with what it is."""
    client = registry_client()
    run = _run(client, run_id)
    if run.info.status != "FINISHED":
        raise RegistryError(
            f"run {run_id} is {run.info.status}, not FINISHED",
            hint="only a run that trained and logged its model completely can be registered",
        )
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        raise RegistryError(f"run {run_id} logged no model", hint="was it made by rtml train?")
    model_name = name or run.data.params.get("model")
    if not model_name:
        raise RegistryError(f"run {run_id} has no 'model' param", hint="pass the model name")
    # register_model resolves the logged model (its id and artifact location) the way
    # both a local store and a tracking server accept.
    version = mlflow.register_model(
        f"models:/{outputs[0].model_id}", model_name, tags=version_tags(run)
    )
    log.info("registered %s version %s from run %s", model_name, version.version, run_id)
    return version


def version_tags(run: Run) -> dict[str, str]:
    """What a version is: config version, framework, algorithm, windows, test metrics."""
    params, metrics = run.data.params, run.data.metrics
    tags = {
        key: params[key]
        for key in ("config_version", "framework", "algorithm", *WINDOW_PARAMS)
        if key in params
    }
    tags.update({key: f"{value:.6g}" for key, value in metrics.items() if key.startswith("test_")})
    if run.info.end_time:
        trained = datetime.fromtimestamp(run.info.end_time / 1000, UTC)
        tags["trained_at"] = trained.isoformat(timespec="seconds")
    return tags


# --- looking things up ----------------------------------------------------------------


def registered_model(client: MlflowClient, name: str) -> RegisteredModel:
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    names = [model.name for model in client.search_registered_models()]
    raise RegistryError(
        f"no registered model {name!r}",
        hint=did_you_mean(name, names) if names else "register one with rtml train --register",
    )


def model_version(client: MlflowClient, name: str, ref: str) -> ModelVersion:
    """Version ``ref`` of ``name``: a number, or an alias (``champion``, ``@champion``)."""
    model = registered_model(client, name)
    ref = str(ref).removeprefix("@")
    if ref.isdigit():
        try:
            return client.get_model_version(name, ref)
        except MlflowException:
            versions = [str(v.version) for v in client.search_model_versions(f"name='{name}'")]
            raise RegistryError(
                f"{name} has no version {ref}",
                hint=f"versions: {', '.join(sorted(versions, key=int)) or 'none'}",
            ) from None
    if ref not in model.aliases:
        raise RegistryError(
            f"{name} has no alias @{ref}",
            hint=f"aliases: {', '.join('@' + a for a in model.aliases) or 'none yet'}",
        )
    return client.get_model_version(name, model.aliases[ref])


def parse_reference(text: str) -> tuple[str, str]:
    """``MODEL@ALIAS`` or ``MODEL/VERSION`` -> (model, alias or version)."""
    for separator in ("@", "/"):
        if separator in text:
            name, ref = text.split(separator, 1)
            if name and ref:
                return name, ref
    raise RegistryError(
        f"cannot read {text!r} as a model version",
        hint="write MODEL@ALIAS (lender_match@champion) or MODEL/VERSION (lender_match/3)",
    )


# --- aliases and traffic --------------------------------------------------------------


def set_alias(name: str, version: str, alias: str) -> ModelVersion:
    """Point ``@alias`` of ``name`` at ``version`` (moving it from where it was)."""
    client = registry_client()
    target = model_version(client, name, version)
    check_alias(alias)
    client.set_registered_model_alias(name, alias, target.version)
    log.info("%s@%s -> version %s", name, alias, target.version)
    return target


def stage_alias(stage: str) -> str:
    """The alias that replaces a deprecated MLflow stage."""
    alias = STAGE_ALIASES.get(stage.lower())
    if alias is None:
        raise RegistryError(
            f"unknown stage {stage!r}", hint="use Production or Staging, or --alias NAME"
        )
    return alias


def check_alias(alias: str) -> None:
    # MLflow reserves "latest" and version-like names (v1, v2...) for its own references.
    if not _ALIAS.match(alias) or alias.lower() == "latest" or re.match(r"^[vV]\d+$", alias):
        raise RegistryError(
            f"{alias!r} cannot be an alias",
            hint="use letters, digits, _ and -, not 'latest' or a version like v3",
        )


def parse_weights(items: list[str]) -> dict[str, int]:
    """``["champion=90", "challenger=10"]`` -> ``{"champion": 90, "challenger": 10}``."""
    weights: dict[str, int] = {}
    for item in items:
        alias, _, value = item.partition("=")
        alias = alias.strip().removeprefix("@")
        if not alias or not value.strip().isdigit():
            raise RegistryError(
                f"cannot read {item!r} as ALIAS=PERCENT", hint="e.g. champion=90 challenger=10"
            )
        if alias in weights:
            raise RegistryError(f"alias @{alias} is given twice")
        weights[alias] = int(value)
    return weights


def set_traffic(name: str, weights: Mapping[str, int]) -> dict[str, int]:
    """Store the A/B split of ``name`` after checking it: known aliases, sum 100."""
    client = registry_client()
    model = registered_model(client, name)
    missing = [alias for alias in weights if alias not in model.aliases]
    if missing:
        raise RegistryError(
            f"{name} has no alias {', '.join('@' + a for a in missing)}",
            hint=f"aliases: {', '.join('@' + a for a in model.aliases) or 'none yet'}; "
            "set one with rtml promote",
        )
    total = sum(weights.values())
    if not weights or total != 100:
        raise RegistryError(
            f"traffic weights add up to {total}, not 100", hint="e.g. champion=90 challenger=10"
        )
    split = {alias: int(weight) for alias, weight in weights.items() if weight > 0}
    client.set_registered_model_tag(name, TRAFFIC_TAG, json.dumps(split))
    return split


def traffic(model: RegisteredModel) -> dict[str, int]:
    """The stored split; without one, all traffic goes to @champion (if there is one)."""
    raw = model.tags.get(TRAFFIC_TAG)
    if raw:
        return {str(k): int(v) for k, v in json.loads(raw).items()}
    return {"champion": 100} if "champion" in model.aliases else {}


def status(name: str) -> tuple[RegisteredModel, list[dict[str, Any]]]:
    """The model and one row per version, newest first, for ``rtml status``."""
    client = registry_client()
    model = registered_model(client, name)
    by_version: dict[str, list[str]] = {}
    for alias, version in model.aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    rows = []
    for version in client.search_model_versions(f"name='{name}'"):
        tags = version.tags
        rows.append(
            {
                "version": str(version.version),
                "aliases": ", ".join(
                    "@" + a for a in sorted(by_version.get(str(version.version), []))
                ),
                "framework": f"{tags.get('framework', '?')} {tags.get('algorithm', '')}".strip(),
                "config": tags.get("config_version", ""),
                "test_auc": tags.get("test_auc", ""),
                "test_r2": tags.get("test_r2", ""),
                "test window": f"{tags.get('test_start', '')}..{tags.get('test_end', '')}",
                "trained": tags.get("trained_at", ""),
                "gate": tags.get("rtml.gate", ""),
                "run": version.run_id or "",
            }
        )
    rows.sort(key=lambda row: int(row["version"]), reverse=True)
    return model, rows


def _run(client: MlflowClient, run_id: str) -> Run:
    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise RegistryError(
            f"no run {run_id!r} in MLflow at {client.tracking_uri}",
            hint="copy the run id from rtml train's summary or the MLflow UI",
        ) from exc
