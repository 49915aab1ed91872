"""Rules for the ``selection`` section: groups name real features, the space is not empty."""

from __future__ import annotations

from collections.abc import Iterator

from ml.config.errors import ConfigIssue, closest
from ml.config.models import ModelConfig

METRIC_PREFIX = "test_"


def check_selection(config: ModelConfig) -> Iterator[ConfigIssue]:
    selection = config.selection
    if selection is None:
        return
    names = [f.name for f in config.features]
    grouped: dict[str, str] = {}
    for group, members in selection.groups.items():
        path = f"selection.groups.{group}"
        if not members:
            yield ConfigIssue(path, f"group {group!r} holds no features", "list its features")
        for i, name in enumerate(members):
            if name not in names:
                yield _unknown(f"{path}[{i}]", "feature", name, names)
            elif name in grouped:
                yield ConfigIssue(
                    f"{path}[{i}]",
                    f"feature {name!r} is already in group {grouped[name]!r}",
                    "put each feature in one group",
                )
            else:
                grouped[name] = group
    yield from _combinations(config, list(selection.groups))
    yield from _buckets(config, names)
    if not selection.groups and not selection.buckets:
        yield ConfigIssue(
            "selection",
            "the search space is empty: no groups and no bucket choices",
            'add groups of features that may be left out, e.g. "groups": {"fit": [...]}',
        )
    metric = selection.metric
    if metric is not None and not metric.startswith(METRIC_PREFIX):
        yield ConfigIssue(
            "selection.metric",
            f"{metric!r} is not a test-window metric",
            "selection compares combinations on the test window: name a test_ metric, "
            "e.g. test_auc",
        )


def _combinations(config: ModelConfig, groups: list[str]) -> Iterator[ConfigIssue]:
    selection = config.selection
    assert selection is not None
    if selection.combinations is None:
        return
    if not selection.combinations:
        yield ConfigIssue(
            "selection.combinations",
            "no combinations listed",
            "list at least one, or remove 'combinations' to search every group in or out",
        )
    if selection.buckets:
        yield ConfigIssue(
            "selection.buckets",
            "bucket choices need the search, but explicit combinations are listed",
            "remove 'combinations' to search, or remove 'buckets'",
        )
    ungrouped = [
        f for f in config.features if all(f.name not in m for m in selection.groups.values())
    ]
    seen: dict[frozenset[str], int] = {}
    for i, combination in enumerate(selection.combinations):
        path = f"selection.combinations[{i}]"
        for j, group in enumerate(combination):
            if group not in groups:
                yield _unknown(f"{path}[{j}]", "group", group, groups)
        key = frozenset(combination)
        if key in seen:
            yield ConfigIssue(path, f"same groups as combinations[{seen[key]}]", "remove one")
        seen.setdefault(key, i)
        if not combination and not ungrouped:
            yield ConfigIssue(path, "uses no features", "name at least one group")


def _buckets(config: ModelConfig, names: list[str]) -> Iterator[ConfigIssue]:
    selection = config.selection
    assert selection is not None
    for name, choices in selection.buckets.items():
        path = f"selection.buckets.{name}"
        if name not in names:
            yield _unknown(path, "feature", name, names)
            continue
        if config.feature(name).type != "numeric":
            yield ConfigIssue(path, f"feature {name!r} is categorical", "bucket numeric features")
        if not choices:
            yield ConfigIssue(path, "no bucket choices", 'e.g. [{"quantiles": 5}, null]')
        for i, buckets in enumerate(choices):
            if buckets is not None and (buckets.edges is None) == (buckets.quantiles is None):
                yield ConfigIssue(
                    f"{path}[{i}]",
                    "give exactly one of 'edges' and 'quantiles'",
                    'e.g. {"edges": [0, 10, 100]} or {"quantiles": 10}',
                )
            edges = buckets.edges if buckets is not None else None
            if edges is not None and any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
                yield ConfigIssue(f"{path}[{i}].edges", "bucket edges must increase")


def _unknown(path: str, kind: str, name: str, known: list[str]) -> ConfigIssue:
    match = closest(name, known)
    hint = f"did you mean {match!r}?" if match else f"name one of the config's {kind}s"
    return ConfigIssue(path, f"unknown {kind} {name!r}", hint)
