"""Learn the pipeline's state from the training window only (the fit half of fit/apply)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ml.config.checks import namespace_of
from ml.config.models import Feature, ModelConfig
from ml.features.encode import column, feature_block, numeric_values, string_array
from ml.features.fitted import (
    MISSING,
    CategoricalState,
    CrossState,
    FeatureError,
    FeatureState,
    FittedPipeline,
    NumericState,
)

_STATISTICS: dict[str, Callable[[np.ndarray], Any]] = {
    "min": np.nanmin,
    "max": np.nanmax,
    "median": np.nanmedian,
    "mean": np.nanmean,
}


def fit_pipeline(config: ModelConfig, train: pd.DataFrame) -> FittedPipeline:
    """Fit every feature and cross of ``config`` on the training frame."""
    if len(train) == 0:
        raise FeatureError(
            "cannot fit the feature pipeline on an empty training window",
            hint="widen windows.train or check the data source",
        )
    states = [_fit_feature(feature, train) for feature in config.features]
    crossed = {name for cross in config.crosses for name in cross.features}
    by_name = {s.name: s for s in states}
    compiled = FittedPipeline(features=states).compiled
    encoded = {
        s.name: feature_block(s, train, compiled.features[s.name])
        for s in states
        if s.name in crossed
    }
    crosses = []
    for cross in config.crosses:
        left, right = cross.features
        pairs = None
        if by_name[left].categorical_like and by_name[right].categorical_like:
            width = len(by_name[right].vocabulary)
            ids = encoded[left].codes * width + encoded[right].codes  # type: ignore[operator]
            unique, counts = np.unique(ids, return_counts=True)
            order = np.lexsort((unique, -counts))[: cross.max_levels]  # most frequent, then id
            pairs = [(int(i // width), int(i % width)) for i in unique[order]]
        crosses.append(CrossState(cross.cross_name, left, right, cross.namespace, pairs))
    return FittedPipeline(features=states, crosses=crosses)


def _fit_feature(feature: Feature, train: pd.DataFrame) -> FeatureState:
    raw = column(train, feature.source_column)
    namespace = namespace_of(feature)
    if feature.type == "categorical":
        return _fit_categorical(feature, raw, namespace)
    values = numeric_values(raw, feature.source_column)
    default = feature.default
    if isinstance(default, str):
        if np.isnan(values).all():
            raise FeatureError(
                f"feature {feature.name!r}: column {feature.source_column!r} is missing in every "
                f"training row, so its default {default!r} cannot be learned",
                hint="give a constant default, or check the query and the training window",
            )
        default = float(_STATISTICS[default](values))
    edges = None
    if feature.buckets is not None:
        if feature.buckets.edges is not None:
            edges = [float(e) for e in feature.buckets.edges]
        else:
            filled = values if default is None else np.where(np.isnan(values), default, values)
            edges = _quantile_edges(filled, feature.buckets.quantiles or 2, feature.name)
    return NumericState(
        feature.name, feature.source_column, namespace, feature.cross_only, default, edges
    )


def _quantile_edges(values: np.ndarray, quantiles: int, name: str) -> list[float]:
    present = values[~np.isnan(values)]
    if present.size == 0:
        raise FeatureError(
            f"feature {name!r}: cannot learn bucket edges from an all-missing column",
            hint="give explicit buckets.edges or a default",
        )
    cuts = np.quantile(present, np.linspace(0, 1, quantiles + 1)[1:-1])
    # Edges must strictly increase; a bucket holding no training value is useless, so drop it.
    edges = np.unique(cuts)
    return [float(e) for e in edges if e > present.min()]


def _fit_categorical(feature: Feature, raw: object, namespace: str) -> CategoricalState:
    strings = string_array(raw)
    default = feature.default if isinstance(feature.default, str) else None
    if feature.default == "mode":
        counts = pc.value_counts(pc.drop_null(strings)).to_pylist()
        if not counts:
            raise FeatureError(
                f"feature {feature.name!r}: column {feature.source_column!r} is missing in every "
                "training row, so its default 'mode' cannot be learned",
                hint="give a constant default, or check the query and the training window",
            )
        default = min(counts, key=lambda c: (-c["counts"], c["values"]))["values"]
    filled = pc.fill_null(strings, default if default is not None else MISSING)
    counts = [(c["values"], c["counts"]) for c in pc.value_counts(filled).to_pylist()]
    kept = sorted((c for c in counts if c[1] >= feature.min_count), key=lambda c: (-c[1], c[0]))
    levels = [level for level, _ in kept[: feature.max_levels]]
    return CategoricalState(
        feature.name, feature.source_column, namespace, feature.cross_only, default, levels
    )
