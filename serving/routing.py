"""Sticky A/B routing: the same entity always lands on the same alias.

The bucket is a hash of the model name and entity id (xxh64, stable across hosts,
processes and restarts, unlike Python's ``hash``), so one business sees one model
for as long as the split stays the same, and every host routes it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xxhash

BUCKETS = 10_000


def bucket(model: str, entity_id: Any) -> int:
    """0..BUCKETS-1 for this entity under this model."""
    return xxhash.xxh64_intdigest(f"{model}\x00{entity_id}".encode()) % BUCKETS


def choose_alias(model: str, entity_id: Any, traffic: Mapping[str, int]) -> str | None:
    """The alias this entity is routed to, by weight; None when the split is empty.

    Weights are normalised over the aliases present, so a host serving only some of
    the split's aliases still routes every request. Aliases are taken in sorted order,
    so the mapping does not depend on how the split was written.
    """
    weights = [(alias, weight) for alias, weight in sorted(traffic.items()) if weight > 0]
    total = sum(weight for _, weight in weights)
    if total <= 0:
        return None
    point = bucket(model, entity_id) * total / BUCKETS
    running = 0.0
    for alias, weight in weights:
        running += weight
        if point < running:
            return alias
    return weights[-1][0]
