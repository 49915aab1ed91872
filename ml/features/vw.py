"""Vowpal Wabbit example lines, written column-wise with Arrow string kernels.

``label [weight] ['tag]|namespace feature:value name=level ... |other ...``

- numeric features: ``name:value`` (absent when missing: VW reads absent as 0);
- categorical, bucketed and crossed levels: ``name=level`` (VW hashes the string);
- numeric x categorical crosses: ``name=level:value``.

Labels follow VW's form: binary 1 / -1 (for ``--loss_function logistic``),
regression the number itself. Cross-only features are not written on their own,
so VW learns no linear weight for them; their crosses are written explicitly.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.features.encode import Block, Frame, blocks, row_count
from ml.features.fitted import FeatureError, FittedPipeline

_UNSAFE = re.compile(r"[\s|:]")


def sanitize(text: str) -> str:
    """VW splits on whitespace, '|' and ':'; replace them inside names and levels."""
    return _UNSAFE.sub("_", text)


def _numbers(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, from_pandas=True), pa.string())


def _tokens(block: Block, tables: dict[str, pa.Array]) -> pa.Array:
    name = sanitize(block.name)
    if block.codes is None:
        return pc.binary_join_element_wise(f"{name}:", _numbers(block.values), "")  # type: ignore[arg-type]
    table = tables.get(block.name)
    if table is None:
        table = pa.array(
            [f"{name}={sanitize(label)}" for label in block.vocabulary or ()], pa.string()
        )
        tables[block.name] = table
    levels = table.take(pa.array(block.codes))
    if block.values is None:
        return levels
    return pc.binary_join_element_wise(levels, _numbers(block.values), ":")


def _labels(labels: Any, task: Literal["binary", "regression"], n: int) -> pa.Array:
    values = np.asarray(labels, dtype=np.float64)
    if values.shape != (n,):
        raise FeatureError(f"expected {n} labels, got shape {values.shape}")
    if np.isnan(values).any():
        raise FeatureError("labels contain missing values", hint="drop or label those rows")
    if task == "binary":
        if not np.isin(values, (0.0, 1.0)).all():
            bad = sorted(set(values[~np.isin(values, (0.0, 1.0))].tolist()))[:5]
            raise FeatureError(f"binary labels must be 0 or 1, found {bad}")
        return pa.array(np.where(values == 1.0, "1", "-1"))
    return _numbers(values)


def vw_lines(
    pipeline: FittedPipeline,
    frame: Frame,
    *,
    labels: Any = None,
    weights: Any = None,
    tags: Any = None,
    task: Literal["binary", "regression"] = "binary",
) -> pa.StringArray:
    """One VW example line per row (no trailing newline)."""
    n = row_count(frame)
    parts: list[Any] = []
    if labels is not None:
        parts.append(_labels(labels, task, n))
        if weights is not None:
            parts.append(_numbers(np.asarray(weights, dtype=np.float64)))
    if tags is not None:
        safe = pc.replace_substring_regex(_as_strings(tags), r"[\s|:]", "_")
        parts.append(pc.binary_join_element_wise("'", safe, ""))
    tables = pipeline.compiled.vw_tokens
    by_namespace: dict[str, list[pa.Array]] = {}  # first-seen order: each namespace written once
    for block in blocks(pipeline, frame):
        by_namespace.setdefault(sanitize(block.namespace), []).append(_tokens(block, tables))
    for namespace, tokens in by_namespace.items():
        parts.append(f"|{namespace}")
        parts.extend(tokens)
    if not any(isinstance(part, pa.Array) for part in parts):
        return pa.array([" ".join(parts)] * n, pa.string())
    # One element-wise join over all tokens: missing tokens are skipped, not written.
    return pc.binary_join_element_wise(*parts, " ", null_handling="skip")


def _as_strings(values: Any) -> pa.Array:
    array = pa.array(values, from_pandas=True)
    return array if pa.types.is_string(array.type) else pc.cast(array, pa.string())


def write_vw_file(path: str, lines: pa.StringArray) -> None:
    """Write lines to ``path``, one example per line, straight from Arrow's buffer."""
    terminated = pc.binary_join_element_wise(lines, "\n", "")
    if terminated.null_count:
        raise FeatureError("cannot write VW lines that contain nulls")
    offsets = np.frombuffer(terminated.buffers()[1], dtype=np.int32)
    start, end = offsets[terminated.offset], offsets[terminated.offset + len(terminated)]
    with open(path, "wb") as handle:
        handle.write(memoryview(terminated.buffers()[2])[start:end])
