"""Fitted states and transformed columns of every feature a trial may use, built once.

Fitting and transforming are per feature (and per cross), so the pipeline fitted on
a subset of the features is the full pipeline's states for that subset, and its
matrix is the subset's column blocks side by side. :class:`ColumnStore` fits each
feature once per bucket choice and transforms each block once per part; a trial
then assembles its pipeline and matrices from them (tested equal to fitting and
transforming the subset config from scratch) and costs about one training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.config import Cross, Feature, ModelConfig
from ml.features.fit import fit_pipeline
from ml.features.fitted import CrossState, FeatureState, FittedPipeline
from ml.frameworks.base import Matrix, MatrixFramework


class ColumnStore:
    """Fitted states (and, for a matrix framework, column blocks) shared by every trial."""

    def __init__(
        self,
        config: ModelConfig,
        train_rows: pd.DataFrame,
        model_state: dict[str, Any],
        matrices: tuple[type[MatrixFramework], str, Mapping[str, pd.DataFrame]] | None = None,
    ) -> None:
        """``matrices`` = (framework class, algorithm, {part: prepared rows}) to build blocks
        for; without it the store only fits states (frameworks that read rows)."""
        self.config = config
        self.train_rows = train_rows
        self.model_state = dict(model_state)
        self.matrices_for = matrices
        self._features: dict[str, FeatureState] = {}
        self._crosses: dict[tuple[str, str, str], CrossState] = {}
        self._blocks: dict[tuple[str, str], Matrix] = {}

    # --- fitted states --------------------------------------------------------------------

    def feature_state(self, feature: Feature) -> FeatureState:
        key = _feature_key(feature)
        if key not in self._features:
            alone = self.config.model_copy(update={"features": [feature], "crosses": []})
            self._features[key] = fit_pipeline(alone, self.train_rows).features[0]
        return dataclasses.replace(self._features[key], cross_only=feature.cross_only)

    def cross_state(self, cross: Cross, left: Feature, right: Feature) -> CrossState:
        key = (cross.model_dump_json(), _feature_key(left), _feature_key(right))
        if key not in self._crosses:
            pair = self.config.model_copy(update={"features": [left, right], "crosses": [cross]})
            self._crosses[key] = fit_pipeline(pair, self.train_rows).crosses[0]
        return self._crosses[key]

    def pipeline(self, subset: ModelConfig) -> FittedPipeline:
        """What ``FeaturePipeline(subset).fit(train)`` would return, from fitted parts."""
        by_name = {f.name: f for f in subset.features}
        return FittedPipeline(
            features=[self.feature_state(f) for f in subset.features],
            crosses=[
                self.cross_state(c, by_name[c.features[0]], by_name[c.features[1]])
                for c in subset.crosses
            ],
            model_state=self.model_state,
        )

    # --- column blocks --------------------------------------------------------------------

    def matrices(self, subset: ModelConfig) -> dict[str, Matrix]:
        """Each part's matrix for ``subset``, laid out as the framework's ``matrix()``."""
        if self.matrices_for is None:
            raise TypeError("this store was built without matrices")
        _, _, parts = self.matrices_for
        by_name = {f.name: f for f in subset.features}
        blocks: list[tuple[str, FittedPipeline]] = []
        for feature in subset.features:
            if not feature.cross_only:
                state = dataclasses.replace(self.feature_state(feature), cross_only=False)
                blocks.append((_feature_key(feature), FittedPipeline(features=[state])))
        for cross in subset.crosses:
            left, right = by_name[cross.features[0]], by_name[cross.features[1]]
            sides = [
                dataclasses.replace(self.feature_state(side), cross_only=True)
                for side in (left, right)
            ]
            crossed = self.cross_state(cross, left, right)
            key = repr((cross.model_dump_json(), _feature_key(left), _feature_key(right)))
            blocks.append((key, FittedPipeline(features=sides, crosses=[crossed])))
        return {
            part: _side_by_side([self._block(key, part, pipeline) for key, pipeline in blocks])
            for part in parts
        }

    def _block(self, key: str, part: str, pipeline: FittedPipeline) -> Matrix:
        if (key, part) not in self._blocks:
            assert self.matrices_for is not None
            framework_class, algorithm, parts = self.matrices_for
            framework = framework_class(self.config, algorithm, pipeline)
            self._blocks[(key, part)] = framework.matrix(parts[part])
        return self._blocks[(key, part)]


def _feature_key(feature: Feature) -> str:
    """What a feature's fitted state depends on (cross_only only flags the state)."""
    return feature.model_dump_json(exclude={"cross_only"})


def _side_by_side(blocks: list[Matrix]) -> Matrix:
    if any(sp.issparse(block) for block in blocks):
        return sp.hstack(blocks, format="csr")
    rows = blocks[0].shape[0]
    out = np.empty((rows, sum(block.shape[1] for block in blocks)), dtype=np.float32, order="F")
    at = 0
    for block in blocks:
        out[:, at : at + block.shape[1]] = block
        at += block.shape[1]
    return out
