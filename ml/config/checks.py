"""Rules that relate config fields to each other, each reported at its own JSON path."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from ml.config.errors import ConfigIssue, closest
from ml.config.models import LEARNED_CATEGORICAL, LEARNED_NUMERIC, Feature, ModelConfig
from ml.config.selection_checks import check_selection

# Flags whose job belongs to rtml: data files, model files, daemon mode.
RESERVED_VW_FLAGS = frozenset(
    {
        "-d",
        "--data",
        "-f",
        "--final_regressor",
        "-i",
        "--initial_regressor",
        "-c",
        "--cache",
        "--cache_file",
        "--daemon",
        "--port",
        "-p",
        "--predictions",
        "-r",
        "--raw_predictions",
        "--readable_model",
        "--invert_hash",
        "--save_resume",
        "--no_stdin",
        "--foreground",
        "--pid_file",
    }
)
_NAMESPACE = re.compile(r"^[A-Za-z0-9][^\s|:]*$")


def check(config: ModelConfig) -> list[ConfigIssue]:
    return [
        *_features(config),
        *_crosses(config),
        *_namespaces(config),
        *_source(config),
        *_windows(config),
        *_vw_flags(config),
        *check_selection(config),
    ]


def namespace_of(feature: Feature) -> str:
    return feature.namespace or ("n" if feature.type == "numeric" else "c")


def _features(config: ModelConfig) -> Iterator[ConfigIssue]:
    seen: set[str] = set()
    for feature in config.features:
        path = f"features.{feature.name}"
        if feature.name in seen:
            yield ConfigIssue(
                f"{path}.name",
                f"duplicate feature name {feature.name!r}",
                "each feature needs its own name",
            )
        seen.add(feature.name)
        yield from _default(feature, path)
        if feature.buckets is not None:
            yield from _buckets(feature, path)


def _default(feature: Feature, path: str) -> Iterator[ConfigIssue]:
    value = feature.default
    if feature.type == "numeric" and isinstance(value, str) and value not in LEARNED_NUMERIC:
        if value in LEARNED_CATEGORICAL:
            yield ConfigIssue(
                f"{path}.default",
                "'mode' is for categorical features",
                f"use one of {', '.join(LEARNED_NUMERIC)} or a number",
            )
        else:
            yield ConfigIssue(
                f"{path}.default",
                f"{value!r} is not a learned statistic",
                f"use one of {', '.join(LEARNED_NUMERIC)} or a number",
            )
    if feature.type == "numeric" and isinstance(value, float) and not math.isfinite(value):
        yield ConfigIssue(f"{path}.default", f"default must be finite, found {value}")
    if feature.type == "categorical":
        if isinstance(value, str) and value in LEARNED_NUMERIC:
            yield ConfigIssue(
                f"{path}.default",
                f"default {value!r} needs a numeric feature, but {feature.name!r} is categorical",
                "use 'mode' or a constant string",
            )
        elif isinstance(value, float):
            yield ConfigIssue(
                f"{path}.default",
                f"a categorical default must be a string, found {value!r}",
                "use 'mode' or a constant string",
            )


def _buckets(feature: Feature, path: str) -> Iterator[ConfigIssue]:
    assert feature.buckets is not None
    where = f"{path}.buckets"
    if feature.type != "numeric":
        yield ConfigIssue(
            where,
            "buckets apply to numeric features only",
            "remove buckets or make the feature numeric",
        )
    edges, quantiles = feature.buckets.edges, feature.buckets.quantiles
    if (edges is None) == (quantiles is None):
        yield ConfigIssue(
            where,
            "give exactly one of 'edges' and 'quantiles'",
            'e.g. {"edges": [0, 10, 100]} or {"quantiles": 10}',
        )
    for i, (low, high) in enumerate(zip(edges or [], (edges or [])[1:], strict=False)):
        if not high > low:
            yield ConfigIssue(
                f"{where}.edges[{i + 1}]",
                f"bucket edges must increase, found {low:g} then {high:g}",
                "sort the edges and remove duplicates",
            )
    if edges is not None and not all(math.isfinite(e) for e in edges):
        yield ConfigIssue(f"{where}.edges", "bucket edges must be finite numbers")
    if edges is not None and not edges:
        yield ConfigIssue(f"{where}.edges", "give at least one edge")


def _crosses(config: ModelConfig) -> Iterator[ConfigIssue]:
    names = [f.name for f in config.features]
    crossed: set[str] = set()
    seen: set[str] = set()
    for cross in config.crosses:
        path = f"crosses.{cross.cross_name}"
        for i, name in enumerate(cross.features):
            if name not in names:
                match = closest(name, names)
                hint = f"did you mean {match!r}?" if match else "name one of the config's features"
                yield ConfigIssue(f"{path}.features[{i}]", f"unknown feature {name!r}", hint)
            crossed.add(name)
        if cross.features[0] == cross.features[1]:
            yield ConfigIssue(f"{path}.features", "a feature cannot be crossed with itself")
        if cross.cross_name in seen or cross.cross_name in names:
            yield ConfigIssue(
                f"{path}.name",
                f"name {cross.cross_name!r} is already used",
                "give the cross a distinct 'name'",
            )
        seen.add(cross.cross_name)
    for feature in config.features:
        if feature.cross_only and feature.name not in crossed:
            yield ConfigIssue(
                f"features.{feature.name}.cross_only",
                f"feature {feature.name!r} is cross-only but used in no cross",
                "add a cross that uses it, or set cross_only to false",
            )


def _namespaces(config: ModelConfig) -> Iterator[ConfigIssue]:
    by_letter: dict[str, str] = {}
    places = [(f"features.{f.name}.namespace", namespace_of(f)) for f in config.features]
    places += [(f"crosses.{c.cross_name}.namespace", c.namespace) for c in config.crosses]
    for path, namespace in places:
        if not _NAMESPACE.match(namespace):
            yield ConfigIssue(
                path,
                f"invalid VW namespace {namespace!r}",
                "start with a letter or digit; no spaces, '|' or ':'",
            )
            continue
        other = by_letter.setdefault(namespace[0], namespace)
        if other != namespace:
            yield ConfigIssue(
                path,
                f"namespaces {other!r} and {namespace!r} share the letter {namespace[0]!r}",
                "VW tells namespaces apart by first letter: rename one",
            )


def _source(config: ModelConfig) -> Iterator[ConfigIssue]:
    source = config.source
    if (source.url is None) == (source.dsn_env is None):
        yield ConfigIssue("source", "give exactly one of 'url' and 'dsn_env'")
    if source.url and re.search(r"://[^/@]*:[^/@]*@", source.url):
        yield ConfigIssue(
            "source.url",
            "the URL contains a password",
            "put the URL in an environment variable and name it in source.dsn_env",
        )


def _windows(config: ModelConfig) -> Iterator[ConfigIssue]:
    windows = config.windows
    absolute = windows.train is not None or windows.test is not None
    if absolute == (windows.relative is not None):
        yield ConfigIssue("windows", "give either 'train' and 'test', or 'relative'")
    if absolute and (windows.train is None or windows.test is None):
        yield ConfigIssue("windows", "absolute windows need both 'train' and 'test'")
    for label, window in (("train", windows.train), ("test", windows.test)):
        if window is not None and window.end <= window.start:
            yield ConfigIssue(
                f"windows.{label}.end",
                f"window ends ({window.end}) on or before it starts ({window.start})",
            )
    relative = windows.relative
    as_of = relative.as_of if relative is not None else "today"
    if as_of != "today" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", as_of):
        yield ConfigIssue(
            "windows.relative.as_of", f"expected 'today' or YYYY-MM-DD, found {as_of!r}"
        )


def _vw_flags(config: ModelConfig) -> Iterator[ConfigIssue]:
    for i, flag in enumerate(config.vw.flags):
        name = flag.split("=", 1)[0]
        if name in RESERVED_VW_FLAGS:
            yield ConfigIssue(
                f"vw.flags[{i}]",
                f"flag {name!r} is managed by rtml",
                "remove it: rtml sets data, model and daemon options itself",
            )


__all__ = ["RESERVED_VW_FLAGS", "check", "namespace_of"]
