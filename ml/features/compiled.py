"""Lookup tables derived once from a fitted pipeline, so each transform only does array work.

Built lazily on first use (``FittedPipeline.compiled``) and never serialised: the
JSON state stays the single source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ml.features.fitted import CategoricalState, FittedPipeline

# Pair-id spaces up to this size get a direct lookup table (8 MiB at most) instead of a search.
LOOKUP_TABLE_MAX = 1 << 20


@dataclass(frozen=True)
class CompiledFeature:
    vocabulary: list[str]
    levels: pa.Array | None  # categorical: the kept levels, for Arrow's index_in
    level_index: dict[str, int] | None  # categorical: level -> code, for small requests
    edges: np.ndarray | None  # bucketed numeric


@dataclass(frozen=True)
class CompiledCross:
    vocabulary: list[str] | None
    width: int  # vocabulary size of the right-hand side: pair id = left code * width + right code
    kept_sorted: np.ndarray | None  # pair ids of the kept pairs, sorted
    kept_order: np.ndarray | None  # their codes (positions in the fitted pairs list)
    lookup: np.ndarray | None  # pair id -> code, when the id space is small enough to tabulate


@dataclass(frozen=True)
class CompiledPipeline:
    features: dict[str, CompiledFeature]
    crosses: dict[str, CompiledCross]
    # VW token per vocabulary entry of each coded block ("name=level"), filled on first use.
    vw_tokens: dict[str, pa.Array] = field(default_factory=dict)


def compile_pipeline(fitted: FittedPipeline) -> CompiledPipeline:
    features = {}
    for state in fitted.features:
        vocabulary = state.vocabulary if state.categorical_like else []
        if isinstance(state, CategoricalState):
            levels = pa.array(state.levels, pa.string())
            index = {level: i for i, level in enumerate(state.levels)}
            features[state.name] = CompiledFeature(vocabulary, levels, index, None)
        else:
            edges = None if state.edges is None else np.asarray(state.edges, dtype=np.float64)
            features[state.name] = CompiledFeature(vocabulary, None, None, edges)
    crosses = {}
    for cross in fitted.crosses:
        left, right = fitted.feature(cross.left), fitted.feature(cross.right)
        width = len(features[cross.right].vocabulary)
        if cross.pairs is None:
            crosses[cross.name] = CompiledCross(None, width, None, None, None)
            continue
        kept = np.array([a * width + b for a, b in cross.pairs], dtype=np.int64)
        order = np.argsort(kept, kind="stable")
        lookup = None
        id_space = len(features[cross.left].vocabulary) * width
        if id_space <= LOOKUP_TABLE_MAX:
            lookup = np.full(id_space, len(kept), dtype=np.int64)
            lookup[kept] = np.arange(len(kept))
        vocabulary = cross.vocabulary(left, right)
        crosses[cross.name] = CompiledCross(vocabulary, width, kept[order], order, lookup)
    return CompiledPipeline(features, crosses)
