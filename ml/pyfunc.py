"""The MLflow pyfunc flavour of an rtml model: ``mlflow.pyfunc.load_model(uri).predict(rows)``.

Models-from-code (design decision 6): MLflow stores ``ml/pyfunc_model.py`` (the
code) and a bundle of plain files (the data): the resolved config, the fitted
pipeline as JSON, and the framework's own model file (XGBoost UBJ, VW model).
Nothing is pickled. ``predict`` takes raw candidate rows (the training query's
columns), runs the model's ``prepare`` and scores them the way rtml does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from ml.config.loading import load_config
from ml.config.models import ModelConfig
from ml.features.fitted import FittedPipeline
from ml.frameworks import Framework, load_framework
from ml.model import Model, create_model

BUNDLE = "rtml"  # the artifact key and folder name of the bundle
CONFIG_FILE = "config.json"
PIPELINE_FILE = "pipeline.json"
FRAMEWORK_DIR = "framework"


def write_bundle(
    directory: Path, config: ModelConfig, pipeline: FittedPipeline, framework: Framework
) -> Path:
    """Write everything needed to score into ``directory``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(json.dumps(config.model_dump(mode="json"), indent=1))
    (directory / PIPELINE_FILE).write_text(pipeline.to_json())
    framework.save(directory / FRAMEWORK_DIR)
    return directory


class Scorer:
    """A loaded bundle: prepare + pipeline + framework, as rtml scores rows."""

    def __init__(self, directory: Path) -> None:
        self.config = load_config(directory / CONFIG_FILE)
        self.pipeline = FittedPipeline.from_json((directory / PIPELINE_FILE).read_text())
        self.model: Model = create_model(self.config)
        self.framework = load_framework(directory / FRAMEWORK_DIR, self.config, self.pipeline)

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        return self.framework.predict(self.model.prepare(rows))


class RtmlPyfuncModel(PythonModel):
    """What ``mlflow.pyfunc.load_model`` builds from ``ml/pyfunc_model.py``."""

    scorer: Scorer

    def load_context(self, context: Any) -> None:
        self.scorer = Scorer(Path(context.artifacts[BUNDLE]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        rows = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.scorer.score(rows)
