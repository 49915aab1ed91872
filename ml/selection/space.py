"""The search space of ``rtml select``: what a trial chooses, and the config a choice means.

A choice is a set of feature groups plus, in a search, a bucket choice per searched
feature. :meth:`SearchSpace.subset` turns it into a plain :class:`ModelConfig` (the
features of the chosen groups, the crosses whose both sides remain, cross-only
features only while a cross uses them), which is what a trial trains and what
``rtml select`` writes as ``<version>-selected.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna

from ml.config import ModelConfig
from ml.config.models import Buckets
from ml.errors import RtmlError

GROUP_PARAM = "group."
BUCKETS_PARAM = "buckets."
COMBINATION_PARAM = "combination"
NO_BUCKETS = "none"
DEFAULT_TRIALS = 30
LOWER_IS_BETTER = ("loss", "rmse", "mae", "mse", "error", "brier")


class SelectionError(RtmlError):
    """Feature selection cannot run as asked (no selection section, storage, study mismatch)."""


def buckets_label(buckets: Buckets | None) -> str:
    """A readable name for a bucket choice: 'quantiles=10', 'edges=6,12,24' or 'none'."""
    if buckets is None:
        return NO_BUCKETS
    if buckets.quantiles is not None:
        return f"quantiles={buckets.quantiles}"
    return "edges=" + ",".join(f"{edge:g}" for edge in buckets.edges or [])


@dataclass(frozen=True)
class Choice:
    """What one trial uses: the groups in, and the bucket label of each searched feature."""

    groups: frozenset[str]
    buckets: dict[str, str] = field(default_factory=dict)


class SearchSpace:
    """The combinations a config's ``selection`` section allows."""

    def __init__(self, config: ModelConfig) -> None:
        if config.selection is None:
            raise SelectionError(
                f"config {config.name!r} has no 'selection' section",
                hint='add "selection": {"groups": {...}} to the config (see configs/README.md)',
            )
        self.config = config
        self.selection = config.selection
        self.groups = list(self.selection.groups)
        self.group_of = {f: g for g, members in self.selection.groups.items() for f in members}
        self.bucket_choices: dict[str, dict[str, Buckets | None]] = {}
        for name, alternatives in self.selection.buckets.items():
            configured = config.feature(name).buckets
            options = {buckets_label(configured): configured}
            options.update((buckets_label(b), b) for b in alternatives)
            self.bucket_choices[name] = options

    # --- what is optimised ------------------------------------------------------------

    @property
    def explicit(self) -> bool:
        return self.selection.combinations is not None

    @property
    def metric(self) -> str:
        if self.selection.metric:
            return self.selection.metric
        return "test_auc" if self.config.task == "binary" else "test_r2"

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        if self.selection.direction:
            return self.selection.direction
        lower = any(self.metric.endswith(word) for word in LOWER_IS_BETTER)
        return "minimize" if lower else "maximize"

    @property
    def trials(self) -> int:
        if self.selection.trials is not None:
            return self.selection.trials
        combinations = self.selection.combinations
        return len(combinations) if combinations is not None else DEFAULT_TRIALS

    def size(self) -> int:
        """How many distinct choices there are."""
        if self.selection.combinations is not None:
            return len(self.selection.combinations)

        def choices(features: list[str]) -> int:
            return math.prod(len(self.bucket_choices.get(f, {"": None})) for f in features)

        ungrouped = [f.name for f in self.config.features if f.name not in self.group_of]
        size = choices(ungrouped)
        for members in self.selection.groups.values():
            size *= 1 + choices(members)
        return size

    def describe(self) -> dict[str, Any]:
        """The space as JSON: a study remembers it, so a rerun can tell it is the same."""
        return {
            "groups": self.selection.groups,
            "combinations": self.selection.combinations,
            "buckets": {name: list(options) for name, options in self.bucket_choices.items()},
            "metric": self.metric,
            "direction": self.direction,
        }

    # --- trials -------------------------------------------------------------------------

    def suggest(self, trial: optuna.Trial) -> Choice:
        """Ask Optuna for a choice (define-by-run: bucket choices only for features in use)."""
        if self.selection.combinations is not None:
            labels = [combination_label(c) for c in self.selection.combinations]
            picked = trial.suggest_categorical(COMBINATION_PARAM, labels)
            return Choice(frozenset(self.selection.combinations[labels.index(picked)]))
        groups = frozenset(
            g for g in self.groups if trial.suggest_categorical(f"{GROUP_PARAM}{g}", [True, False])
        )
        buckets = {}
        for name, options in self.bucket_choices.items():
            if self.group_of.get(name, None) in (None, *groups):
                label = trial.suggest_categorical(f"{BUCKETS_PARAM}{name}", list(options))
                buckets[name] = str(label)
        return Choice(groups, buckets)

    def choice(self, params: dict[str, Any]) -> Choice:
        """The choice a finished trial's params stand for."""
        if self.selection.combinations is not None:
            labels = [combination_label(c) for c in self.selection.combinations]
            return Choice(
                frozenset(self.selection.combinations[labels.index(params[COMBINATION_PARAM])])
            )
        groups = frozenset(g for g in self.groups if params.get(f"{GROUP_PARAM}{g}"))
        buckets = {
            name: str(params[f"{BUCKETS_PARAM}{name}"])
            for name in self.bucket_choices
            if f"{BUCKETS_PARAM}{name}" in params
        }
        return Choice(groups, buckets)

    def baseline_params(self) -> dict[str, Any] | None:
        """Optuna params of "every feature, as configured"; None for explicit combinations."""
        if self.explicit:
            return None
        params: dict[str, Any] = {f"{GROUP_PARAM}{g}": True for g in self.groups}
        for name, options in self.bucket_choices.items():
            params[f"{BUCKETS_PARAM}{name}"] = next(iter(options))
        return params

    def subset(self, choice: Choice) -> ModelConfig | None:
        """The config a choice means; None when it leaves no feature to train on."""
        features = []
        for feature in self.config.features:
            group = self.group_of.get(feature.name)
            if group is not None and group not in choice.groups:
                continue
            if feature.name in choice.buckets:
                chosen = self.bucket_choices[feature.name][choice.buckets[feature.name]]
                feature = feature.model_copy(update={"buckets": chosen})
            features.append(feature)
        kept = {f.name for f in features}
        crosses = [c for c in self.config.crosses if set(c.features) <= kept]
        crossed = {name for cross in crosses for name in cross.features}
        features = [f for f in features if not f.cross_only or f.name in crossed]
        if not crosses and all(f.cross_only for f in features):
            return None
        raw = self.config.model_dump(mode="json", exclude={"selection"})
        raw["features"] = [f.model_dump(mode="json") for f in features]
        raw["crosses"] = [c.model_dump(mode="json") for c in crosses]
        return ModelConfig.model_validate(raw)


def combination_label(groups: list[str]) -> str:
    return "+".join(groups) if groups else "(ungrouped only)"


def combination_key(config: ModelConfig) -> str:
    """What a trained combination is, for spotting duplicates: its features and crosses."""
    canonical = json.dumps(
        [
            [f.model_dump(mode="json") for f in config.features],
            [c.model_dump(mode="json") for c in config.crosses],
        ],
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def selected_raw(raw: dict[str, Any], chosen: ModelConfig, note: str) -> dict[str, Any]:
    """The original config file's JSON, narrowed to ``chosen``: what rtml select writes.

    Starting from the file (not the resolved config) keeps its layout and the values
    it leaves to defaults; the selection section goes, since its groups may name
    features the selected config no longer has.
    """
    by_name = {f.name: f for f in chosen.features}
    features = []
    for item in raw.get("features", []):
        feature = by_name.get(item.get("name"))
        if feature is None:
            continue
        item = dict(item)
        if feature.buckets is None:
            item.pop("buckets", None)
        else:
            item["buckets"] = feature.buckets.model_dump(mode="json", exclude_none=True)
        features.append(item)
    cross_names = {c.cross_name for c in chosen.crosses}
    crosses = [
        c
        for c in raw.get("crosses", [])
        if (c.get("name") or "_x_".join(c["features"])) in cross_names
    ]
    selected = {key: value for key, value in raw.items() if key != "selection"}
    selected.update(features=features, crosses=crosses)
    selected["description"] = " ".join(filter(None, [raw.get("description", ""), note]))
    return selected
