"""The feature values a prediction used, for people reading a response or a log.

For every feature (cross-only ones included, crosses left out: they follow from
their sides) the raw value after the fitted default is filled in, and which
features were filled by a default. It reads the same fitted state as
:mod:`ml.features.encode`, so what is reported is what the model saw: a missing
numeric value with a learned median is reported as that median; one without a
default stays missing (``None``), as the framework saw it. Infinite numbers count
as missing, as in the encoder. Values are reported before bucketing: a category unseen
in training reads as sent, where the model read it as ``__other__``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml.features.encode import Frame, column, numeric_values, row_count, string_array
from ml.features.fitted import CategoricalState, FittedPipeline


def feature_values(
    pipeline: FittedPipeline, frame: Frame
) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Per row: ``{feature: value used}`` and the names filled by a default."""
    n = row_count(frame)
    used: list[dict[str, Any]] = [{} for _ in range(n)]
    defaulted: list[list[str]] = [[] for _ in range(n)]
    for state in pipeline.features:
        raw = column(frame, state.column)
        if isinstance(state, CategoricalState):
            values: list[Any] = string_array(raw).to_pylist()
            missing = np.array([value is None for value in values], dtype=bool)
        else:
            numbers = numeric_values(raw, state.column)
            missing = np.isnan(numbers)
            values = [None if m else float(v) for v, m in zip(numbers, missing, strict=True)]
        filled = missing if state.default is not None else np.zeros(n, dtype=bool)
        for i in range(n):
            if filled[i]:
                used[i][state.name] = state.default
                defaulted[i].append(state.name)
            else:
                used[i][state.name] = values[i]
    return used, defaulted
