"""Training frameworks as plugins: one module each, found by name.

Adding a framework is one module with a :class:`Framework` subclass and one line
in ``FRAMEWORKS``. Modules are imported only when used, so XGBoost users never
load Vowpal Wabbit and the other way round.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ml.config.models import ModelConfig
from ml.features.fitted import FittedPipeline
from ml.frameworks.base import (
    Examples,
    FitContext,
    Framework,
    FrameworkError,
    read_framework_meta,
)

__all__ = [
    "FRAMEWORKS",
    "Examples",
    "FitContext",
    "Framework",
    "FrameworkError",
    "check_choice",
    "create_framework",
    "framework_class",
    "load_framework",
]

# name -> "module:Class"
FRAMEWORKS = {
    "xgboost": "ml.frameworks.xgboost:XGBoostFramework",
    "vw": "ml.frameworks.vw:VWFramework",
}


def framework_class(name: str) -> type[Framework]:
    if name not in FRAMEWORKS:
        raise FrameworkError(
            f"unknown framework {name!r}", hint=f"choose one of {', '.join(FRAMEWORKS)}"
        )
    module_name, class_name = FRAMEWORKS[name].split(":")
    cls: type[Framework] = getattr(importlib.import_module(module_name), class_name)
    return cls


def check_choice(name: str, algorithm: str, config: ModelConfig) -> type[Framework]:
    """The framework class, after checking ``algorithm`` exists and suits the config's task."""
    cls = framework_class(name)
    if algorithm not in cls.algorithms:
        choices = ", ".join(f"{a} ({d})" for a, d in cls.algorithms.items())
        raise FrameworkError(
            f"{name} has no algorithm {algorithm!r}", hint=f"choose one of: {choices}"
        )
    allowed = cls.task_algorithms.get(config.task, ())
    if algorithm not in allowed:
        raise FrameworkError(
            f"{name} --algorithm {algorithm} cannot train a {config.task} model "
            f"({config.name} has task {config.task!r})",
            hint=f"for {config.task} use one of: {', '.join(allowed)}",
        )
    return cls


def create_framework(
    name: str, algorithm: str, config: ModelConfig, pipeline: FittedPipeline
) -> Framework:
    """The framework ``name`` set up for ``algorithm``, checked against the config's task."""
    return check_choice(name, algorithm, config)(config, algorithm, pipeline)


def load_framework(directory: Path, config: ModelConfig, pipeline: FittedPipeline) -> Framework:
    """A trained framework from the files :meth:`Framework.save` wrote."""
    meta = read_framework_meta(directory)
    framework = create_framework(meta["framework"], meta["algorithm"], config, pipeline)
    framework.load_model(directory, meta["saved"])
    return framework
