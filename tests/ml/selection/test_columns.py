"""A trial's pipeline and matrices, assembled from per-feature parts, equal fitting the
trial's config from scratch: column subsets change nothing but the cost."""

from __future__ import annotations

import numpy as np
import pytest

from ml.config import resolve
from ml.data.sources import open_source
from ml.data.urls import parse_db_url
from ml.datasets import pull_windows
from ml.features import FeaturePipeline
from ml.frameworks.xgboost import XGBoostFramework
from ml.model import create_model
from ml.selection.space import Choice, SearchSpace
from ml.selection.workers import trial_data
from tests.ml.selection.conftest import lender_match_raw

CHOICES = [
    Choice(frozenset({"credit", "lender", "amount"}), {"credit_score": "quantiles=10"}),
    Choice(frozenset({"lender"}), {}),
    Choice(frozenset({"credit", "geo"}), {"credit_score": "quantiles=5"}),
    Choice(frozenset({"credit", "amount"}), {"credit_score": "none"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["gbtree", "logistic"])
def test_assembled_columns_equal_a_fresh_fit(selection_db: str, algorithm: str) -> None:
    raw = lender_match_raw(selection_db)
    raw["selection"] = {
        "groups": {
            "credit": ["credit_score", "credit_margin"],
            "lender": ["lender_id"],
            "geo": ["state"],
            "amount": ["requested_amount", "amount_to_max"],
        },
        "buckets": {"credit_score": [{"quantiles": 5}, None]},
    }
    config = resolve(raw, "test.json")
    model = create_model(config)
    with open_source(parse_db_url(selection_db), progress=False) as source:
        windows = pull_windows(model, source, cache=None)
    data = trial_data(model, windows, "xgboost", algorithm)
    space = SearchSpace(config)
    state = model.model_state(data.sets.train.rows)
    for choice in CHOICES:
        subset = space.subset(choice)
        assert subset is not None
        fresh = FeaturePipeline(subset).fit(data.sets.train.rows, model_state=state)
        assert data.store.pipeline(subset) == fresh
        framework = XGBoostFramework(subset, algorithm, fresh)
        matrices = data.store.matrices(subset)
        assert set(matrices) == {"train", "validation", "test"}
        for part in (data.sets.train, data.sets.validation, data.sets.test):
            assert part is not None
            expected = framework.matrix(part.rows)
            got = matrices[part.name]
            if algorithm == "logistic":  # sparse one-hot
                expected, got = expected.toarray(), got.toarray()
            np.testing.assert_array_equal(got, expected, err_msg=f"{choice} {part.name}")
