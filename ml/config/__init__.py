"""Model configs: pydantic models, cross-field checks, --set overrides, loading and schema.

A model version is ``configs/<model>/<version>.json``; :func:`load_model_config`
reads the newest (or a named) version, upgrades old formats, applies ``--set``
overrides and validates, raising :class:`ConfigError` with every problem found,
each at its JSON path.
"""

from ml.config.errors import ConfigError, ConfigIssue
from ml.config.loading import (
    CONFIGS_DIR,
    config_versions,
    find_config,
    json_schema,
    load_config,
    load_model_config,
    resolve,
)
from ml.config.models import CONFIG_VERSION, Buckets, Cross, Feature, ModelConfig

__all__ = [
    "CONFIGS_DIR",
    "CONFIG_VERSION",
    "Buckets",
    "ConfigError",
    "ConfigIssue",
    "Cross",
    "Feature",
    "ModelConfig",
    "config_versions",
    "find_config",
    "json_schema",
    "load_config",
    "load_model_config",
    "resolve",
]
