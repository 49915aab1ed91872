"""`rtml config validate | show | schema` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from entrypoints.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "configs" / "lender_match" / "v1.json")


def test_validate_ok() -> None:
    result = CliRunner().invoke(cli, ["config", "validate", DEMO])
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output and "lender_match, binary" in result.output


def test_validate_bad_override_exits_2_with_the_path() -> None:
    result = CliRunner().invoke(
        cli, ["config", "validate", DEMO, "--set", "features.industry.default=mean"]
    )
    assert result.exit_code == 2
    assert "features.industry.default: default 'mean' needs a numeric feature" in result.output
    assert "Traceback" not in result.output


def test_show_prints_the_resolved_config_with_overrides() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "config",
            "show",
            "lender_match",
            "--configs-dir",
            str(ROOT / "configs"),
            "--set",
            "features.annual_revenue.default=mean",
            "--set",
            "xgboost.num_boost_round=7",
        ],
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["xgboost"]["num_boost_round"] == 7
    assert shown["overrides"] == [
        "features.annual_revenue.default=mean",
        "xgboost.num_boost_round=7",
    ]
    assert next(f for f in shown["features"] if f["name"] == "annual_revenue")["default"] == "mean"
    assert shown["features"][0]["max_levels"] == 1000  # defaults are filled in


def test_show_unknown_model_suggests_the_closest() -> None:
    result = CliRunner().invoke(
        cli, ["config", "show", "lender_mach", "--configs-dir", str(ROOT / "configs")]
    )
    assert result.exit_code == 2
    assert (
        "no model 'lender_mach'" in result.output and "did you mean 'lender_match'" in result.output
    )


def test_schema_matches_the_checked_in_file() -> None:
    result = CliRunner().invoke(cli, ["config", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads((ROOT / "configs" / "schema.json").read_text())
