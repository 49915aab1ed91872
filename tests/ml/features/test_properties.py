"""Property-based tests: any mix of NaN, infinities, empty frames and unseen levels is handled.

Documented behaviour: +/-inf is treated exactly like a missing value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.features import (
    FeatureError,
    FeaturePipeline,
    FittedPipeline,
    to_onehot,
    transform,
    vw_lines,
    xgboost_layout,
)
from tests.ml.features.conftest import make_config, make_frame

CONFIG = make_config()
FITTED = FeaturePipeline(CONFIG).fit(make_frame(1000, seed=4))
WIDTH = len(xgboost_layout(FITTED)[0])

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324]),
)
levels = st.one_of(st.none(), st.sampled_from(["a", "b", "x", "y", "north"]), st.text(max_size=6))


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=25))
    data = {
        name: draw(st.lists(numbers, min_size=n, max_size=n))
        for name in ("income", "debt", "score", "age")
    }
    for name in ("city", "kind", "region"):
        data[name] = draw(st.lists(levels, min_size=n, max_size=n))
    return pd.DataFrame(
        {
            k: pd.Series(
                v, dtype="float64" if k in ("income", "debt", "score", "age") else "object"
            )
            for k, v in data.items()
        }
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_transform_never_crashes_and_keeps_shape(frame: pd.DataFrame) -> None:
    X = transform(FITTED, frame)
    assert X.shape == (len(frame), WIDTH) and X.dtype == np.float32
    assert to_onehot(FITTED, frame).shape[0] == len(frame)
    lines = vw_lines(FITTED, frame, labels=np.ones(len(frame)))
    assert len(lines) == len(frame) and lines.null_count == 0
    for line in lines.to_pylist():
        assert "\n" not in line and "inf" not in line.lower() and "nan" not in line.lower()


@settings(max_examples=100, deadline=None)
@given(frames())
def test_infinity_is_treated_as_missing(frame: pd.DataFrame) -> None:
    as_nan = frame.replace([np.inf, -np.inf], np.nan)
    np.testing.assert_array_equal(transform(FITTED, frame), transform(FITTED, as_nan))
    assert vw_lines(FITTED, frame).equals(vw_lines(FITTED, as_nan))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_fit_on_any_frame_learns_or_explains(frame: pd.DataFrame) -> None:
    try:
        fitted = FeaturePipeline(CONFIG).fit(frame)
    except FeatureError as error:  # empty window, or a learned default with nothing to learn from
        assert "empty training window" in str(error) or "missing in every training row" in str(
            error
        )
        return
    again = FittedPipeline.from_json(fitted.to_json())
    np.testing.assert_array_equal(transform(again, frame), transform(fitted, frame))


def test_empty_frame_gives_empty_outputs() -> None:
    empty = make_frame(0)
    assert transform(FITTED, empty).shape == (0, WIDTH)
    assert len(vw_lines(FITTED, empty, labels=[])) == 0
    with pytest.raises(FeatureError, match="empty training window"):
        FeaturePipeline(CONFIG).fit(empty)
