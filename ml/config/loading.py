"""Finding, reading, upgrading and validating model configs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ml.config.checks import check
from ml.config.errors import ConfigError, ConfigIssue, did_you_mean, from_validation_error
from ml.config.models import CONFIG_VERSION, ModelConfig
from ml.config.overrides import apply_overrides

CONFIGS_DIR = Path("configs")

# Upgrade steps from each old config_version to the next: {old_version: function(raw) -> raw}.
# Format changes add a step here, so configs written for older rtml keep loading.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def version_key(version: str) -> tuple[Any, ...]:
    """Natural order: v2 < v10, and v1 < v1-selected."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", version))


def config_versions(model: str, root: Path = CONFIGS_DIR) -> list[str]:
    folder = root / model
    return sorted((p.stem for p in folder.glob("*.json")), key=version_key)


def find_config(model: str, version: str | None = None, root: Path = CONFIGS_DIR) -> Path:
    """The path of ``configs/<model>/<version>.json`` (newest version when None)."""
    models = sorted(p.name for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
    if model not in models:
        raise ConfigError(
            str(root / model),
            [ConfigIssue("", f"no model {model!r} in {root}/", did_you_mean(model, models))],
        )
    versions = config_versions(model, root)
    if not versions:
        raise ConfigError(str(root / model), [ConfigIssue("", "no config versions (*.json)")])
    chosen = version or versions[-1]
    if chosen not in versions:
        raise ConfigError(
            str(root / model),
            [ConfigIssue("", f"no version {chosen!r}", did_you_mean(chosen, versions))],
        )
    return root / model / f"{chosen}.json"


def read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            str(path), [ConfigIssue("", f"cannot read file: {exc.strerror}")]
        ) from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        issue = ConfigIssue(
            "", f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        )
        raise ConfigError(str(path), [issue]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(
            str(path), [ConfigIssue("", f"expected a JSON object, found {type(raw).__name__}")]
        )
    return raw


def upgrade(raw: dict[str, Any], source: str) -> dict[str, Any]:
    version = raw.get("config_version", CONFIG_VERSION)
    if not isinstance(version, int) or version < 1:
        raise ConfigError(
            source,
            [ConfigIssue("config_version", f"expected a positive integer, found {version!r}")],
        )
    if version > CONFIG_VERSION:
        raise ConfigError(
            source,
            [
                ConfigIssue(
                    "config_version",
                    f"written for config_version {version}; this rtml reads up to {CONFIG_VERSION}",
                    "upgrade rtml",
                )
            ],
        )
    while version < CONFIG_VERSION:
        raw = UPGRADES[version](raw)
        version += 1
        raw["config_version"] = version
    return raw


def resolve(raw: dict[str, Any], source: str, overrides: list[str] | None = None) -> ModelConfig:
    """Upgrade, apply overrides, validate: the config a run uses."""
    overrides = list(overrides or [])
    raw = upgrade(raw, source)
    raw, issues = apply_overrides(raw, overrides, ModelConfig)
    if issues:
        raise ConfigError(source, issues)
    recorded = raw.get("overrides") or []
    if overrides and isinstance(recorded, list):
        raw["overrides"] = [*recorded, *overrides]
    try:
        config = ModelConfig.model_validate(raw)
    except ValidationError as exc:
        raise from_validation_error(source, exc, raw, ModelConfig) from exc
    issues = check(config)
    if issues:
        raise ConfigError(source, issues)
    return config


def load_config(path: Path, overrides: list[str] | None = None) -> ModelConfig:
    return resolve(read_json(path), str(path), overrides)


def load_model_config(
    model: str,
    version: str | None = None,
    overrides: list[str] | None = None,
    root: Path = CONFIGS_DIR,
) -> ModelConfig:
    return load_config(find_config(model, version, root), overrides)


def json_schema() -> dict[str, Any]:
    schema = ModelConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "rtml model config"
    return schema
