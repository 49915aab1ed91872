"""The feature pipeline: ``FeaturePipeline(config).fit(train)`` -> :class:`FittedPipeline`.

The fitted pipeline is what training and serving share (design decision 1): the
same :func:`transform` runs on a training window and on one request's rows.

    fitted = FeaturePipeline(config).fit(train_frame)
    X = transform(fitted, frame)                     # float32, columns = xgboost_layout(fitted)[0]
    lines = vw_lines(fitted, frame, labels=y)        # VW examples
    FittedPipeline.from_json(fitted.to_json())       # round-trips exactly
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pandas as pd

from ml.config.models import ModelConfig
from ml.features.encode import Frame
from ml.features.fit import fit_pipeline
from ml.features.fitted import FittedPipeline
from ml.features.xgb import native_layout, to_native


class FeaturePipeline:
    """Learns defaults, bucket edges, levels and cross pairs from a training frame."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    def fit(self, train: pd.DataFrame, model_state: dict[str, Any] | None = None) -> FittedPipeline:
        """Fit on ``train``; ``model_state`` (JSON values a model subclass learned from the
        same window, e.g. thresholds) is stored with the fitted state."""
        fitted = fit_pipeline(self.config, train)
        if model_state:
            json.dumps(model_state)  # fail now, not when the model is saved
            fitted = dataclasses.replace(fitted, model_state=dict(model_state))
        return fitted


def transform(fitted: FittedPipeline, frame: Frame) -> np.ndarray:
    """The XGBoost matrix (native categoricals) for ``frame``."""
    return to_native(fitted, frame)


xgboost_layout = native_layout
