"""The feature pipeline: learned state, both outputs, one path for batch and single requests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ml.config import ModelConfig
from ml.features import (
    FeatureError,
    FeaturePipeline,
    FittedPipeline,
    onehot_names,
    to_onehot,
    transform,
    vw_lines,
    xgboost_layout,
)
from ml.features.fitted import MISSING, OTHER
from tests.ml.features.conftest import make_config, make_frame


def test_learned_state_comes_from_the_training_window(
    config: ModelConfig, train: pd.DataFrame
) -> None:
    fitted = FeaturePipeline(config).fit(train)
    income = fitted.feature("income")
    assert income.default == pytest.approx(np.nanmedian(train["income"]))
    age = fitted.feature("age")
    assert age.edges == pytest.approx(sorted(set(np.quantile(train["age"], [0.25, 0.5, 0.75]))))
    kind = fitted.feature("kind")
    assert kind.default == "x"  # the mode; missing values become it
    assert (
        fitted.feature("city").levels
        == ["a", "b", "c", "rare place"][: len(fitted.feature("city").levels)]
    )
    # A shifted test window does not move anything learned.
    test = make_frame(500, seed=2)
    test["income"] *= 100
    assert FittedPipeline.from_json(fitted.to_json()) == fitted
    X = transform(fitted, test)
    names, _ = xgboost_layout(fitted)
    filled = X[test["income"].isna().to_numpy(), names.index("income")]
    assert filled == pytest.approx(np.float32(income.default))


def test_json_round_trip_gives_identical_transforms(
    config: ModelConfig, train: pd.DataFrame
) -> None:
    fitted = FeaturePipeline(config).fit(train)
    again = FittedPipeline.from_json(fitted.to_json())
    test = make_frame(300, seed=5)
    np.testing.assert_array_equal(transform(again, test), transform(fitted, test))
    np.testing.assert_array_equal(
        to_onehot(again, test).toarray(), to_onehot(fitted, test).toarray()
    )
    assert vw_lines(again, test).equals(vw_lines(fitted, test))
    assert again.fingerprint() == fitted.fingerprint()


def test_batch_and_single_request_paths_agree(config: ModelConfig, train: pd.DataFrame) -> None:
    fitted = FeaturePipeline(config).fit(train)
    rows = make_frame(500, seed=9)
    batch = transform(fitted, rows)
    batch_lines = vw_lines(fitted, rows).to_pylist()
    for start in range(0, 500, 50):  # one request = one entity's 50 candidates
        request = rows.iloc[start : start + 50]
        as_lists = {name: request[name].tolist() for name in request.columns}  # JSON-like input
        for single in (request.reset_index(drop=True), as_lists):
            np.testing.assert_array_equal(transform(fitted, single), batch[start : start + 50])
            assert vw_lines(fitted, single).to_pylist() == batch_lines[start : start + 50]


def test_missing_values_stay_missing_without_a_default(
    config: ModelConfig, train: pd.DataFrame
) -> None:
    fitted = FeaturePipeline(config).fit(train)
    X = transform(fitted, train)
    names, types = xgboost_layout(fitted)
    debt = X[:, names.index("debt")]
    assert np.isnan(debt).sum() == train["debt"].isna().sum() > 0
    assert not np.isnan(X[:, names.index("income")]).any()
    product = X[:, names.index("income_x_debt")]
    assert np.isnan(product).sum() == train["debt"].isna().sum()
    assert types[names.index("city")] == "c" and types[names.index("income")] == "q"


def test_buckets_unseen_levels_and_crosses() -> None:
    fitted = FeaturePipeline(make_config()).fit(make_frame(2000, seed=1))
    rows = pd.DataFrame(
        {
            "income": [1.0, np.nan],
            "debt": [2.0, 3.0],
            "score": [599.0, np.nan],
            "age": [np.nan, 49.0],
            "city": ["a", "atlantis"],
            "kind": ["y", "never seen"],
            "region": ["north", "south"],
        }
    )
    names, _ = xgboost_layout(fitted)
    X = transform(fitted, rows)
    score = fitted.feature("score")
    assert [score.vocabulary[int(c)] for c in X[:, names.index("score")]] == ["b0", MISSING]
    city = fitted.feature("city")
    assert city.vocabulary[int(X[1, names.index("city")])] == OTHER
    assert X[0, names.index("income_x_debt")] == pytest.approx(2.0)
    # score x kind: (b0, y) was seen in training; (missing, never seen) was not.
    cross = fitted.crosses[1]
    vocab = cross.vocabulary(fitted.feature("score"), fitted.feature("kind"))
    assert vocab[int(X[0, names.index("score_x_kind")])] == "b0&y"
    assert vocab[int(X[1, names.index("score_x_kind")])] == OTHER
    # debt x city: the number sits in its city's slot, zero elsewhere.
    slots = [i for i, n in enumerate(names) if n.startswith("debt_x_city=")]
    assert X[0, slots].tolist() == [2.0] + [0.0] * (len(slots) - 1)
    assert X[1, names.index(f"debt_x_city={OTHER}")] == 3.0


def test_category_dtype_takes_the_same_path_as_strings(
    config: ModelConfig, train: pd.DataFrame
) -> None:
    fitted = FeaturePipeline(config).fit(train)
    test = make_frame(400, seed=3)
    as_category = test.astype({"city": "category", "kind": "category", "region": "category"})
    np.testing.assert_array_equal(transform(fitted, as_category), transform(fitted, test))


def test_cross_only_features_have_no_column_or_token(
    config: ModelConfig, train: pd.DataFrame
) -> None:
    fitted = FeaturePipeline(config).fit(train)
    assert not any(n == "region" or n.startswith("region=") for n in xgboost_layout(fitted)[0])
    assert not any(n.startswith("region=") for n in onehot_names(fitted))
    line = vw_lines(fitted, train.iloc[:1])[0].as_py()
    assert "region_x_kind=" in line and " region=" not in line and "|r" not in line


def test_onehot_matrix_matches_names_and_trains(config: ModelConfig, train: pd.DataFrame) -> None:
    fitted = FeaturePipeline(config).fit(train)
    matrix = to_onehot(fitted, train)
    names = onehot_names(fitted)
    assert matrix.shape == (len(train), len(names))
    column = matrix[:, names.index("city=a")].toarray().ravel()
    assert (column == 1.0).sum() == (train["city"] == "a").sum()
    label = (train["score"] > 650).astype(int)
    booster = xgb.train(
        {"booster": "gblinear", "objective": "binary:logistic"},
        xgb.DMatrix(matrix, label=label, feature_names=names),
        5,
    )
    native_names, types = xgboost_layout(fitted)
    dense = xgb.DMatrix(
        transform(fitted, train),
        label=label,
        feature_names=native_names,
        feature_types=types,
        enable_categorical=True,
    )
    trees = xgb.train({"objective": "binary:logistic", "max_depth": 3}, dense, 5)
    assert booster.num_features() == len(names) and trees.num_features() == len(native_names)


def test_vw_labels_weights_and_tags(config: ModelConfig, train: pd.DataFrame) -> None:
    fitted = FeaturePipeline(config).fit(train)
    rows = train.iloc[:3]
    lines = vw_lines(
        fitted, rows, labels=[1, 0, 1], weights=[2.0, 1.0, 0.5], tags=["p 1", "p2", "p3"]
    )
    assert [line.as_py().split("|")[0] for line in lines] == [
        "1 2 'p_1 ",
        "-1 1 'p2 ",
        "1 0.5 'p3 ",
    ]
    plain = vw_lines(fitted, rows, labels=[0.5, 1.5, -2.0], task="regression")
    assert [line.as_py().split("|")[0] for line in plain] == ["0.5 ", "1.5 ", "-2 "]
    with pytest.raises(FeatureError, match=r"binary labels must be 0 or 1, found \[2.0\]"):
        vw_lines(fitted, rows, labels=[1, 0, 2])


def test_learning_a_default_from_an_all_missing_column_names_it(config: ModelConfig) -> None:
    train = make_frame(100)
    train["income"] = np.nan
    with pytest.raises(FeatureError, match="column 'income' is missing in every training row"):
        FeaturePipeline(config).fit(train)


def test_missing_input_column_is_a_clear_error(config: ModelConfig, train: pd.DataFrame) -> None:
    fitted = FeaturePipeline(config).fit(train)
    with pytest.raises(FeatureError, match="input has no column 'city'"):
        transform(fitted, train.drop(columns=["city"]))


def test_text_in_a_numeric_column_is_named_not_made_missing() -> None:
    from ml.features.encode import numeric_values
    from ml.features.fitted import FeatureError

    parsed = numeric_values(pd.Series(["1.5", "", None, "2"], dtype=object), "revenue")
    assert parsed[0] == 1.5 and np.isnan(parsed[1]) and np.isnan(parsed[2]) and parsed[3] == 2
    with pytest.raises(FeatureError, match=r"'revenue'.*2 of 4 rows.*'n/a'"):
        numeric_values(pd.Series(["1", "n/a", "abc", None]), "revenue")


def test_plain_number_arrays_take_a_fast_path_with_the_same_matrix() -> None:
    """Serving's raw-row requests (float64 arrays, numeric features only) are stacked in
    whole-matrix steps; the result equals the per-block path, defaults, NaN, inf and
    out-of-float32-range values included."""
    config = make_config(
        features=[
            {"name": "income", "type": "numeric", "default": "median", "namespace": "n"},
            {"name": "debt", "type": "numeric", "namespace": "n"},
            {"name": "age", "type": "numeric", "default": 0, "namespace": "n"},
        ],
        crosses=[],
    )
    frame = make_frame(300, seed=4)[["income", "debt", "age"]]
    fitted = FeaturePipeline(config).fit(frame)
    frame.loc[:5, "age"] = [np.nan, np.inf, -np.inf, 1e300, -1e300, 3.0]
    arrays = {name: frame[name].to_numpy(np.float64) for name in frame.columns}
    fast = transform(fitted, arrays)
    np.testing.assert_array_equal(fast, transform(fitted, frame))  # DataFrame: block path
    as_lists = {name: values.tolist() for name, values in arrays.items()}
    np.testing.assert_array_equal(fast, transform(fitted, as_lists))  # lists: block path
    biggest = np.finfo(np.float32).max
    assert list(fast[:5, 2]) == [0, 0, 0, biggest, -biggest]  # NaN and inf: the default
    assert np.isnan(fast[:, 1]).any()  # debt has no default: missing stays missing
