"""A request's rows as numpy arrays, typed the way pandas would type them.

The online query returns columns of Python values; the Open Inference Protocol
gives numbers and strings. Models score from plain arrays (no DataFrame per
request): integers stay int64 (an integer-valued categorical such as ``lender_id``
must read as ``19``, not ``19.0``), integers mixed with floats or missing values
become float64 with NaN, and anything else (text, dates) an object array.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

_INT, _FLOAT, _NONE = int, float, type(None)


def as_arrays(rows: Mapping[str, Any] | pd.DataFrame) -> dict[str, np.ndarray]:
    if isinstance(rows, pd.DataFrame):
        return {str(name): rows[name].to_numpy() for name in rows.columns}
    return {name: column_array(values) for name, values in rows.items()}


def column_array(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    kinds = set(map(type, values))
    try:
        if kinds == {_INT}:
            return np.array(values, dtype=np.int64)
        if kinds and kinds <= {_INT, _FLOAT, _NONE} and kinds != {_NONE}:
            return np.array(values, dtype=np.float64)  # None -> NaN
    except OverflowError:  # beyond 64 bits: keep the Python integers
        pass
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array
