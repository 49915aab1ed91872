"""The fitted pipeline: everything learned from the training window, as plain JSON.

Learned defaults, bucket edges, category levels and kept cross pairs are stored
here and used unchanged for the test window and for live requests. No pickle:
the state round-trips through JSON (:meth:`FittedPipeline.to_json`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from ml.errors import RtmlError

if TYPE_CHECKING:
    from ml.features.compiled import CompiledPipeline

FORMAT_VERSION = 1
OTHER = "__other__"
MISSING = "__missing__"


class FeatureError(RtmlError):
    """Data that the feature pipeline cannot fit or apply (e.g. an all-missing column)."""


@dataclass(frozen=True)
class NumericState:
    name: str
    column: str
    namespace: str
    cross_only: bool
    default: float | None  # the constant, or the statistic learned on the training window
    edges: list[float] | None  # bucket boundaries; None = use the value itself
    kind: Literal["numeric"] = "numeric"

    @property
    def categorical_like(self) -> bool:
        return self.edges is not None

    @property
    def vocabulary(self) -> list[str]:
        """Bucket labels: b0 (below the first edge) ... bN, then the missing bucket."""
        assert self.edges is not None
        return [f"b{i}" for i in range(len(self.edges) + 1)] + [MISSING]


@dataclass(frozen=True)
class CategoricalState:
    name: str
    column: str
    namespace: str
    cross_only: bool
    default: str | None
    levels: list[str]  # kept training levels, most frequent first; anything else is OTHER
    kind: Literal["categorical"] = "categorical"

    @property
    def categorical_like(self) -> bool:
        return True

    @property
    def vocabulary(self) -> list[str]:
        return [*self.levels, OTHER]


FeatureState = NumericState | CategoricalState


@dataclass(frozen=True)
class CrossState:
    name: str
    left: str
    right: str
    namespace: str
    # For two categorical-like sides: the kept (left code, right code) pairs, most frequent first.
    pairs: list[tuple[int, int]] | None = None

    def vocabulary(self, left: FeatureState, right: FeatureState) -> list[str]:
        assert self.pairs is not None
        lv, rv = left.vocabulary, right.vocabulary
        return [f"{lv[a]}&{rv[b]}" for a, b in self.pairs] + [OTHER]


@dataclass(frozen=True)
class FittedPipeline:
    features: list[FeatureState]
    crosses: list[CrossState] = field(default_factory=list)
    # Values a model subclass computes from the training window (e.g. thresholds), kept with
    # the learned defaults and edges so test windows and live requests use them unchanged.
    model_state: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def feature(self, name: str) -> FeatureState:
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, FeatureState]:
        return {f.name: f for f in self.features}

    @cached_property
    def compiled(self) -> CompiledPipeline:
        """Lookup tables for fast transforms (derived, not serialised)."""
        from ml.features.compiled import compile_pipeline

        return compile_pipeline(self)

    @property
    def raw_columns(self) -> list[str]:
        return list(dict.fromkeys(f.column for f in self.features))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "features": [asdict(f) for f in self.features],
            "crosses": [asdict(c) for c in self.crosses],
            "model_state": self.model_state,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def fingerprint(self) -> str:
        """Stable hash of the fitted state: a cache key for transformed data."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FittedPipeline:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise FeatureError(
                f"fitted pipeline format {version!r} is not supported (expected {FORMAT_VERSION})",
                hint="retrain the model with this rtml version",
            )
        features: list[FeatureState] = []
        for item in data["features"]:
            if item["kind"] == "numeric":
                features.append(NumericState(**item))
            else:
                features.append(CategoricalState(**item))
        crosses = [
            CrossState(
                **{**c, "pairs": None if c["pairs"] is None else [tuple(p) for p in c["pairs"]]}
            )
            for c in data["crosses"]
        ]
        return cls(features=features, crosses=crosses, model_state=data.get("model_state", {}))

    @classmethod
    def from_json(cls, text: str) -> FittedPipeline:
        return cls.from_dict(json.loads(text))
