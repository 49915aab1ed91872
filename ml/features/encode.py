"""Apply fitted state to raw columns: numeric values and categorical codes.

Every feature and cross becomes a :class:`Block`, the one intermediate form the
XGBoost and VW writers share, so both frameworks see the same features:

- a numeric block: one float per row (NaN = missing);
- a coded block: one code per row into a vocabulary (levels, buckets or level
  pairs; the last entry is '__other__' or '__missing__'), optionally with a value
  per row (numeric x categorical crosses put the number in its level's slot).

Inputs may be a DataFrame or a mapping of column name to array-like. Infinite
values are treated as missing; finite values beyond float32's range (about
3.4e38, the precision both XGBoost and VW compute in) are clipped to it, and so
are cross products. Everything is vectorised over rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.features.compiled import CompiledCross, CompiledFeature
from ml.features.fitted import (
    MISSING,
    CategoricalState,
    CrossState,
    FeatureError,
    FeatureState,
    FittedPipeline,
)

Frame = pd.DataFrame | Mapping[str, Any]
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Block:
    name: str
    namespace: str
    values: np.ndarray | None = None  # float64: the number (numeric), or the slot value (coded)
    codes: np.ndarray | None = None  # integer codes into vocabulary
    vocabulary: list[str] | None = None

    @property
    def coded(self) -> bool:
        return self.codes is not None


def column(frame: Frame, name: str) -> Any:
    try:
        return frame[name]
    except KeyError:
        available = list(frame.keys()) if isinstance(frame, Mapping) else list(frame.columns)
        raise FeatureError(
            f"input has no column {name!r}",
            hint=f"the pipeline reads it; columns present: {', '.join(map(str, available))}",
        ) from None


def numeric_values(raw: Any, name: str) -> np.ndarray:
    """float64 values, NaN where missing or infinite; text that is not a number is an error."""
    if type(raw) is np.ndarray and raw.dtype == np.float64 and raw.ndim == 1:
        return representable(raw)  # serving's arrays: nothing to convert
    if isinstance(raw, pd.Series):
        if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
            raw = _parse_numbers(raw, name)
        values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        try:
            values = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            values = _parse_numbers(pd.Series(raw, dtype=object), name).to_numpy(
                np.float64, na_value=np.nan
            )
    if values.ndim != 1:
        raise FeatureError(f"column {name!r} must be one-dimensional, got shape {values.shape}")
    return representable(values)


def _parse_numbers(raw: pd.Series, name: str) -> pd.Series:
    """Numbers sent as text ("12.5") parse; anything else is named, not silently made missing."""
    parsed = pd.to_numeric(raw, errors="coerce")
    blank = raw.isna() | raw.astype(str).str.strip().eq("")
    bad = parsed.isna() & ~blank
    if bad.any():
        examples = ", ".join(repr(v) for v in raw[bad].drop_duplicates().head(3))
        raise FeatureError(
            f"numeric column {name!r} holds values that are not numbers "
            f"({int(bad.sum())} of {len(raw)} rows, e.g. {examples})",
            hint="cast the column in the model's query or prepare(), "
            "or make the feature categorical",
        )
    return parsed


def representable(values: np.ndarray) -> np.ndarray:
    """inf -> NaN, and finite values clipped to float32's range."""
    out_of_range = np.abs(values) > FLOAT32_MAX  # True for inf, False (no warning) for NaN
    if not out_of_range.any():
        return values
    values = np.where(np.isinf(values), np.nan, values)
    return np.clip(values, -FLOAT32_MAX, FLOAT32_MAX)


def string_array(raw: Any) -> pa.Array:
    """The column as an Arrow string array (nulls for missing)."""
    if isinstance(raw, pd.Series):
        raw = raw.array
    array = pa.array(raw, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not pa.types.is_string(array.type):  # pandas 3 strings are large_string
        array = pc.cast(array, pa.string())
    return array


# Below this many rows a Python dict lookup beats Arrow's per-call overhead (one request).
SMALL_INPUT_ROWS = 256


def categorical_codes(raw: Any, state: CategoricalState, compiled: CompiledFeature) -> np.ndarray:
    """Codes into ``state.vocabulary``: a level's position, or the last ('__other__')."""
    other = len(state.levels)
    fill = state.default if state.default is not None else MISSING
    if isinstance(raw, pd.Series) and isinstance(raw.dtype, pd.CategoricalDtype):
        # Fast path for dictionary-encoded data: map the few categories, then take by code.
        categories = pa.concat_arrays([string_array(raw.cat.categories), pa.array([fill])])
        mapping = pc.fill_null(pc.index_in(categories, value_set=compiled.levels), other)
        return mapping.to_numpy(zero_copy_only=False)[raw.cat.codes.to_numpy()]
    small = _small_string_codes(raw, compiled.level_index, fill, other)
    if small is not None:
        return small
    strings = pc.fill_null(string_array(raw), fill)
    found = pc.index_in(strings, value_set=compiled.levels)
    return pc.fill_null(found, other).to_numpy(zero_copy_only=False)  # int32 codes


def _small_string_codes(
    raw: Any, index: dict[str, int] | None, fill: str, other: int
) -> np.ndarray | None:
    """Dict lookups for a few rows of plain strings; None when Arrow must decide (numbers...)."""
    if index is None or len(raw) > SMALL_INPUT_ROWS:
        return None
    values = raw.tolist() if isinstance(raw, pd.Series) else raw
    codes = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        if isinstance(value, str):
            codes[i] = index.get(value, other)
        elif value is None or (isinstance(value, float) and value != value) or value is pd.NA:
            codes[i] = index.get(fill, other)
        else:
            return None  # a number or other type: Arrow's string cast defines its text
    return codes


def feature_block(state: FeatureState, frame: Frame, compiled: CompiledFeature) -> Block:
    raw = column(frame, state.column)
    if isinstance(state, CategoricalState):
        codes = categorical_codes(raw, state, compiled)
        return Block(state.name, state.namespace, codes=codes, vocabulary=compiled.vocabulary)
    values = numeric_values(raw, state.column)
    if state.default is not None:
        values = np.where(np.isnan(values), state.default, values)
    if compiled.edges is None:
        return Block(state.name, state.namespace, values=values)
    codes = bucket_codes(values, compiled.edges)
    codes[np.isnan(values)] = len(compiled.edges) + 1  # the missing bucket
    return Block(state.name, state.namespace, codes=codes, vocabulary=compiled.vocabulary)


def bucket_codes(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Number of edges <= each value (searchsorted 'right'); NaN gives 0."""
    if len(edges) > 16:
        return np.searchsorted(edges, values, side="right")
    # A few vectorised comparisons beat a binary search per value.
    codes = np.zeros(len(values), dtype=np.int64)
    for edge in edges:
        codes += values >= edge
    return codes


def cross_block(cross: CrossState, left: Block, right: Block, compiled: CompiledCross) -> Block:
    if not left.coded and not right.coded:
        assert left.values is not None and right.values is not None
        with np.errstate(over="ignore", invalid="ignore"):
            product = left.values * right.values
        return Block(cross.name, cross.namespace, values=representable(product))
    if left.coded and right.coded:
        assert left.codes is not None and right.codes is not None
        pair_ids = left.codes.astype(np.int64) * compiled.width + right.codes
        codes = pair_codes(pair_ids, compiled)
        return Block(cross.name, cross.namespace, codes=codes, vocabulary=compiled.vocabulary)
    number, coded = (left, right) if right.coded else (right, left)
    return Block(
        cross.name,
        cross.namespace,
        values=number.values,
        codes=coded.codes,
        vocabulary=coded.vocabulary,
    )


def pair_codes(pair_ids: np.ndarray, compiled: CompiledCross) -> np.ndarray:
    """Code of each (left, right) pair id among the kept pairs, else the last ('__other__')."""
    if compiled.lookup is not None:
        return compiled.lookup[pair_ids]
    kept, order = compiled.kept_sorted, compiled.kept_order
    assert kept is not None and order is not None
    if kept.size == 0:
        return np.zeros(len(pair_ids), dtype=np.int64)
    position = np.minimum(np.searchsorted(kept, pair_ids), kept.size - 1)
    return np.where(kept[position] == pair_ids, order[position], kept.size)


def blocks(pipeline: FittedPipeline, frame: Frame) -> list[Block]:
    """Every output block in a stable order: features (minus cross-only ones), then crosses."""
    compiled = pipeline.compiled
    encoded = {
        s.name: feature_block(s, frame, compiled.features[s.name]) for s in pipeline.features
    }
    result = [encoded[s.name] for s in pipeline.features if not s.cross_only]
    for cross in pipeline.crosses:
        left, right = encoded[cross.left], encoded[cross.right]
        result.append(cross_block(cross, left, right, compiled.crosses[cross.name]))
    return result


def row_count(frame: Frame) -> int:
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    first = next(iter(frame.values()), None)
    return 0 if first is None else len(first)


__all__ = ["Block", "Frame", "blocks", "representable", "row_count"]
