"""The rtml CLI, through click's runner and as the installed console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from entrypoints.cli import cli


def test_help_explains_the_tool_and_its_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "JSON model config" in result.output
    assert "demo-data" in result.output and "demo " in result.output


def test_demo_data_help_describes_tables_and_options() -> None:
    result = CliRunner().invoke(cli, ["demo-data", "--help"])
    assert result.exit_code == 0
    for word in (
        "--db",
        "--businesses",
        "--seed",
        "applications",
        "outcomes",
        "missing",
        "Examples",
    ):
        assert word in result.output


def test_unreachable_database_is_one_line_exit_2_without_password() -> None:
    result = CliRunner().invoke(
        cli, ["demo-data", "--db", "postgresql://bob:s3cret@127.0.0.1:1/lending"]
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(
        "Error: cannot connect to postgresql database 'lending' at 127.0.0.1:1"
    )
    assert "s3cret" not in result.output


def test_bad_end_date_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["demo-data", "--end-date", "yesterday"])
    assert result.exit_code == 2
    assert "expected YYYY-MM-DD" in result.output


def test_demo_data_then_verify(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/d.db"
    runner = CliRunner()
    first = runner.invoke(cli, ["demo-data", "--db", db, "--businesses", "300", "-q"])
    assert first.exit_code == 0, first.output
    assert "Wrote demo data" in first.output and "applications" in first.output
    second = runner.invoke(cli, ["demo-data", "--db", db, "--businesses", "300", "-q"])
    assert "reused" in second.output
    verified = runner.invoke(cli, ["demo-data", "--db", db, "--verify"])
    assert verified.exit_code == 0 and "every table matches" in verified.output


def test_verify_without_data_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo-data", "--db", f"{tmp_path}/empty.db", "--verify"])
    assert result.exit_code == 2
    assert "holds no demo data" in result.output


@pytest.mark.integration
def test_console_script_runs_the_demo(tmp_path: Path) -> None:
    rtml = shutil.which("rtml", path=str(Path(sys.executable).parent))
    assert rtml, "the rtml console script is not installed"
    env = {
        **os.environ,
        "RTML_DEMO_DB": f"sqlite:///{tmp_path}/demo.db",
        "RTML_CACHE_DIR": str(tmp_path / "cache"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
    }
    done = subprocess.run(
        [rtml, "demo", "-q"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "Wrote demo data" in done.stdout
    assert "@champion -> version 1, @challenger -> version 2, traffic 90/10" in done.stdout
    rerun = subprocess.run(
        [rtml, "demo", "-q"], env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0 and "reused" in rerun.stdout
    assert "cache: reused train window [2024-12-01, 2026-06-01)" in rerun.stderr
    uncached = subprocess.run(
        [rtml, "demo", "-q", "--no-cache"], env=env, capture_output=True, text=True, timeout=300
    )
    assert uncached.returncode == 0 and "cache:" not in uncached.stderr


def test_cache_list_and_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ml.data.cache import Cache

    monkeypatch.setenv("RTML_CACHE_DIR", str(tmp_path))
    runner = CliRunner()
    assert "is empty" in runner.invoke(cli, ["cache", "list"]).output
    Cache().store(
        "queries",
        "ab" * 32,
        {"rows.arrow": lambda path: path.write_bytes(b"x" * 2048)},
        description="train window [2025-01-01, 2025-02-01) from sqlite:///demo.db",
        info={"rows": 1234},
    )
    listed = runner.invoke(cli, ["cache", "list"])
    assert listed.exit_code == 0
    assert "1,234 rows" in listed.output and "train window [2025-01-01" in listed.output
    cleared = runner.invoke(cli, ["cache", "clear"])
    assert cleared.exit_code == 0 and "Removed 1 entries" in cleared.output
    assert "is empty" in runner.invoke(cli, ["cache", "list"]).output
