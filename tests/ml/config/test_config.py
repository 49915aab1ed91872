"""Model configs: the shipped ones validate; each kind of mistake gets its documented error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ml.config import (
    CONFIG_VERSION,
    ConfigError,
    config_versions,
    find_config,
    json_schema,
    load_config,
    load_model_config,
    resolve,
)

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "configs" / "lender_match" / "v1.json"


def _raw() -> dict[str, Any]:
    return json.loads(DEMO.read_text())


def _problem(raw: dict[str, Any], overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        resolve(raw, "test.json", overrides)
    return str(caught.value)


def test_every_shipped_config_validates() -> None:
    paths = sorted((ROOT / "configs").glob("*/*.json"))
    assert DEMO in paths
    for path in paths:
        config = load_config(path)
        assert config.name == path.parent.name


def test_schema_json_is_current() -> None:
    checked_in = json.loads((ROOT / "configs" / "schema.json").read_text())
    assert checked_in == json_schema(), "regenerate: rtml config schema > configs/schema.json"


def test_schema_describes_every_field() -> None:
    schema = json_schema()
    for name, definition in [("ModelConfig", schema), *schema["$defs"].items()]:
        for field, spec in definition.get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field} has no description"


def test_overrides_apply_and_are_recorded() -> None:
    config = resolve(
        _raw(),
        "test.json",
        [
            "features.annual_revenue.default=mean",
            "xgboost.num_boost_round=50",
            'features.credit_score.buckets={"quantiles": 4}',
            "crosses.industry_x_lender_id.namespace=y",
            'features.new_flag={"type": "numeric", "default": 0}',
        ],
    )
    assert config.feature("annual_revenue").default == "mean"
    assert config.xgboost.num_boost_round == 50
    assert config.feature("credit_score").buckets.quantiles == 4  # type: ignore[union-attr]
    assert config.crosses[1].namespace == "y"
    assert config.feature("new_flag").default == 0
    assert config.overrides[0] == "features.annual_revenue.default=mean"


def test_newest_version_is_found_in_natural_order(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    for version in ("v2", "v10", "v1"):
        (folder / f"{version}.json").write_text(DEMO.read_text().replace("lender_match", "m"))
    assert config_versions("m", tmp_path) == ["v1", "v2", "v10"]
    assert find_config("m", None, tmp_path).name == "v10.json"
    assert load_model_config("m", "v2", root=tmp_path).name == "m"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"features": {"credit_score": {"defualt": 1}}},
            "features.credit_score: unknown key 'defualt' (did you mean 'default'?",
        ),
        (
            {"features": {"credit_score": {"default": [1]}}},
            "features.credit_score.default: expected a number, a string or null, found [1]",
        ),
        ({"task": "classify"}, "task: expected 'binary' or 'regression', found 'classify'"),
        (
            {"crosses": {1: {"features": ["industy", "lender_id"]}}},
            "crosses.industy_x_lender_id.features[0]: unknown feature 'industy' (did you mean 'industry'?)",
        ),
        (
            {"crosses": {2: None}},
            "features.state.cross_only: feature 'state' is cross-only but used in no cross",
        ),
        (
            {"features": {"months_in_business": {"buckets": {"edges": [6, 12, 12]}}}},
            "features.months_in_business.buckets.edges[2]: bucket edges must increase, found 12 then 12",
        ),
        (
            {"features": {"industry": {"default": "mean"}}},
            "features.industry.default: default 'mean' needs a numeric feature, but 'industry' is categorical",
        ),
        (
            {"features": {"lender_id": {"namespace": "industry2"}}},
            "features.lender_id.namespace: namespaces 'industry' and 'industry2' share the letter 'i'",
        ),
        (
            {"features": {"annual_revenue": {"default": "average"}}},
            "features.annual_revenue.default: 'average' is not a learned statistic",
        ),
        (
            {"features": {"industry": {"buckets": {"quantiles": 3}}}},
            "features.industry.buckets: buckets apply to numeric features only",
        ),
        ({"source": {"url": "postgresql://me:pw@db/x"}}, "source.url: the URL contains a password"),
        ({"vw": {"flags": ["-d", "x.vw"]}}, "vw.flags[0]: flag '-d' is managed by rtml"),
        (
            {"windows": {"test": {"start": "2026-06-01", "end": "2026-05-01"}}},
            "windows.test.end: window ends (2026-05-01) on or before it starts (2026-06-01)",
        ),
        ({"model_class": "not a path"}, "model_class: string should match pattern"),
        (
            {"config_version": CONFIG_VERSION + 1},
            f"config_version: written for config_version {CONFIG_VERSION + 1}",
        ),
    ],
)
def test_bad_configs_name_the_path(change: dict[str, Any], expected: str) -> None:
    raw = _raw()
    _merge(raw, change)
    assert expected in _problem(raw)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("features.nope.default=1", "path 'features.nope.default': no item named 'nope'"),
        ("featurs.x=1", "unknown key 'featurs' (did you mean 'features'?"),
        ("features.credit_score.defualt=1", "unknown key 'defualt' (did you mean 'default'?"),
        ("no_equals_sign", "expected PATH=VALUE"),
        ("features.99.default=1", "index 99 is past the end"),
    ],
)
def test_bad_overrides_name_the_path(override: str, expected: str) -> None:
    assert expected in _problem(_raw(), [override])


def test_all_cross_field_problems_are_reported_at_once() -> None:
    raw = _raw()
    _merge(
        raw, {"features": {"industry": {"default": "mean"}, "annual_revenue": {"default": "avg"}}}
    )
    message = _problem(raw)
    assert "2 problems" in message
    assert "features.industry.default" in message and "features.annual_revenue.default" in message


def test_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x",\n "task": }')
    with pytest.raises(ConfigError, match="not valid JSON at line 2, column 10"):
        load_config(path)


def _merge(raw: dict[str, Any], change: dict[str, Any]) -> None:
    """Apply ``change``: dict keys into objects, feature names into features, ints into lists."""
    for key, value in change.items():
        if key == "features" and isinstance(value, dict):
            for name, patch in value.items():
                feature = next(f for f in raw["features"] if f["name"] == name)
                _merge(feature, patch)
        elif isinstance(key, int):
            if value is None:
                del raw[key]  # type: ignore[arg-type]
            else:
                _merge(raw[key], value)  # type: ignore[index]
        elif key == "crosses" and isinstance(value, dict):
            _merge(raw["crosses"], value)  # type: ignore[arg-type]
        elif isinstance(value, dict) and isinstance(raw.get(key), dict):
            _merge(raw[key], value)
        else:
            raw[key] = value
