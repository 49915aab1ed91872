"""The selection section: each mistake at its JSON path; what a choice of groups means."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ml.config import ConfigError, ModelConfig, load_config, resolve
from ml.selection.space import Choice, SearchSpace, SelectionError, combination_key, selected_raw

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "configs" / "lender_match" / "v1.json"


def _raw(selection: dict[str, Any] | None = None) -> dict[str, Any]:
    """The demo config, with ``selection`` in place of its own when given."""
    raw: dict[str, Any] = json.loads(DEMO.read_text())
    if selection is not None:
        raw["selection"] = selection
    return raw


def _problem(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        resolve(raw, "test.json")
    return str(caught.value)


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (
            {"groups": {"credit": ["credit_scor"]}},
            "selection.groups.credit[0]: unknown feature 'credit_scor' (did you mean 'credit_score'?)",
        ),
        ({}, "selection: the search space is empty"),
        ({"groups": {"credit": []}}, "selection.groups.credit: group 'credit' holds no features"),
        (
            {"groups": {"a": ["state"], "b": ["state"]}},
            "selection.groups.b[0]: feature 'state' is already in group 'a'",
        ),
        (
            {"groups": {"a": ["state"]}, "combinations": [["a"], ["b"]]},
            "selection.combinations[1][0]: unknown group 'b'",
        ),
        (
            {"groups": {"a": ["state"]}, "combinations": [["a"], ["a"]]},
            "selection.combinations[1]: same groups as combinations[0]",
        ),
        (
            {
                "groups": {"a": ["state"]},
                "combinations": [["a"]],
                "buckets": {"credit_score": [None]},
            },
            "selection.buckets: bucket choices need the search",
        ),
        (
            {"buckets": {"industry": [None]}},
            "selection.buckets.industry: feature 'industry' is categorical",
        ),
        ({"buckets": {"nope": [None]}}, "selection.buckets.nope: unknown feature 'nope'"),
        (
            {"buckets": {"credit_score": [{"edges": [3, 1]}]}},
            "selection.buckets.credit_score[0].edges",
        ),
        (
            {"groups": {"a": ["state"]}, "metric": "train_auc"},
            "selection.metric: 'train_auc' is not a test",
        ),
        ({"groups": {"a": ["state"]}, "trials": 0}, "selection.trials"),
    ],
)
def test_selection_mistakes_name_their_json_path(selection: dict[str, Any], expected: str) -> None:
    assert expected in _problem(_raw(selection))


def test_a_config_without_selection_cannot_be_searched() -> None:
    raw = _raw()
    del raw["selection"]
    with pytest.raises(SelectionError, match="has no 'selection' section"):
        SearchSpace(resolve(raw, "test.json"))


def _space(**selection: Any) -> SearchSpace:
    return SearchSpace(resolve(_raw(selection), "test.json"))


def test_a_choice_keeps_ungrouped_features_and_only_crosses_whose_sides_remain() -> None:
    space = _space(groups={"lender": ["lender_id"], "geo": ["state"], "credit": ["credit_score"]})
    subset = space.subset(Choice(frozenset({"geo", "credit"})))
    assert subset is not None
    names = [f.name for f in subset.features]
    # lender_id is out: its crosses go, and state (cross-only, crossed only with lender_id) too.
    assert "lender_id" not in names and "state" not in names and "credit_score" in names
    assert [c.cross_name for c in subset.crosses] == [
        "credit_score_x_product_type",
        "requested_amount_x_product_type",
    ]
    # ...so choosing geo or not is the same combination: the second would not be retrained.
    without_geo = space.subset(Choice(frozenset({"credit"})))
    assert without_geo is not None and combination_key(without_geo) == combination_key(subset)
    full = space.subset(Choice(frozenset({"lender", "geo", "credit"})))
    assert full is not None and combination_key(full) != combination_key(subset)


def test_bucket_choices_include_the_configured_buckets_first() -> None:
    space = _space(buckets={"credit_score": [{"quantiles": 5}, None, {"quantiles": 10}]})
    assert list(space.bucket_choices["credit_score"]) == ["quantiles=10", "quantiles=5", "none"]
    assert space.size() == 3
    assert space.baseline_params() == {"buckets.credit_score": "quantiles=10"}
    raw_bucket = space.subset(Choice(frozenset(), {"credit_score": "none"}))
    assert raw_bucket is not None and raw_bucket.feature("credit_score").buckets is None


def test_space_size_counts_groups_and_bucket_choices() -> None:
    space = _space(
        groups={"credit": ["credit_score", "credit_margin"], "lender": ["lender_id"]},
        buckets={"credit_score": [{"quantiles": 5}, None]},
    )
    # credit: out, or in with 3 bucket choices (4); lender: in or out (2).
    assert space.size() == 8
    assert _space(groups={"a": ["state"]}, combinations=[["a"], []]).size() == 2


def test_metric_and_direction_defaults() -> None:
    assert (_space(groups={"a": ["state"]}).metric, _space(groups={"a": ["state"]}).direction) == (
        "test_auc",
        "maximize",
    )
    assert _space(groups={"a": ["state"]}, metric="test_log_loss").direction == "minimize"
    assert _space(groups={"a": ["state"]}, combinations=[["a"], []]).trials == 2


def test_a_choice_with_no_features_is_none() -> None:
    raw = _raw()
    names = [f["name"] for f in raw["features"]]
    raw["selection"] = {"groups": {"all": names}}
    space = SearchSpace(resolve(raw, "test.json"))
    assert space.subset(Choice(frozenset())) is None


def test_the_selected_config_keeps_the_file_and_drops_what_was_left_out(tmp_path: Path) -> None:
    raw = _raw(
        {
            "groups": {"lender": ["lender_id", "state"]},
            "buckets": {"credit_score": [{"quantiles": 5}]},
        }
    )
    space = SearchSpace(resolve(raw, "test.json"))
    chosen = space.subset(Choice(frozenset(), {"credit_score": "quantiles=5"}))
    assert isinstance(chosen, ModelConfig)
    written = selected_raw(raw, chosen, "Selected.")
    assert "selection" not in written
    assert written["description"].endswith(" Selected.")
    assert written["data"] == raw["data"] and written["xgboost"] == raw["xgboost"]
    path = tmp_path / "v1-selected.json"
    path.write_text(json.dumps(written))
    loaded = load_config(path)
    assert [f.name for f in loaded.features] == [f.name for f in chosen.features]
    assert loaded.feature("credit_score").buckets == chosen.feature("credit_score").buckets
    assert {c.cross_name for c in loaded.crosses} == {c.cross_name for c in chosen.crosses}
