"""A small demo marketplace and configs for feature-selection tests.

``noisy_config`` is lender_match plus four features of pure noise (a numeric hash
of the application id, and a categorical one), in a group of their own, so a
selection has something it should leave out.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import demo_sqlite

ROOT = Path(__file__).resolve().parents[3]

NOISE = tuple(f"noise_{i}" for i in range(12))


@pytest.fixture(scope="package")
def selection_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = demo_sqlite(tmp_path_factory, businesses=2000, seed=11)
    add_noise(url.removeprefix("sqlite:///"))
    return url


def add_noise(path: str, seed: int = 3) -> None:
    """A table of pure noise per application: numbers in [0, 1) and a 500-level category (the kind of id-like column trees overfit)."""
    with sqlite3.connect(path) as db:
        ids = np.array([row[0] for row in db.execute("SELECT application_id FROM applications")])
        rng = np.random.default_rng(seed)
        columns = [rng.random(ids.size) for _ in NOISE[:-1]]
        levels = [f"n{i}" for i in rng.integers(0, 500, ids.size)]
        db.execute(
            f"CREATE TABLE noise (application_id INTEGER PRIMARY KEY, {', '.join(n + ' REAL' for n in NOISE[:-1])}, {NOISE[-1]} TEXT)"
        )
        db.executemany(
            f"INSERT INTO noise VALUES (?, {', '.join('?' for _ in NOISE)})",
            zip(ids.tolist(), *(c.tolist() for c in columns), levels, strict=True),
        )


def lender_match_raw(db: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((ROOT / "configs" / "lender_match" / "v1.json").read_text())
    raw["source"] = {"url": db}
    raw["xgboost"]["num_boost_round"] = 120
    return raw


def noisy_raw(db: str) -> dict[str, Any]:
    raw = lender_match_raw(db)
    query = raw["data"]["query"]
    columns = "".join(f", z.{name}" for name in NOISE)
    query = query.replace(" FROM applications a", columns + " FROM applications a", 1)
    query = query.replace(
        " WHERE ", " JOIN noise z ON z.application_id = a.application_id WHERE ", 1
    )
    raw["data"]["query"] = query
    raw["features"] += [{"name": name, "type": "numeric"} for name in NOISE[:-1]]
    raw["features"].append({"name": NOISE[-1], "type": "categorical"})
    # Columns sampled per tree, so noise displaces real features instead of only being ignored.
    raw["xgboost"]["params"].update(colsample_bytree=0.5, max_depth=8, min_child_weight=1)
    raw["selection"] = {
        "groups": {
            "credit": ["credit_score", "credit_margin"],
            "amount": ["requested_amount", "max_amount", "amount_to_max"],
            "noise": list(NOISE),
        },
        "trials": 8,
    }
    return raw


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any], str], Path]:
    """Write a config as <tmp>/configs/<name>/<version>.json; returns the configs folder."""

    def write(raw: dict[str, Any], version: str = "v1") -> Path:
        folder = tmp_path / "configs" / raw["name"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{version}.json").write_text(json.dumps(raw, indent=1))
        return tmp_path / "configs"

    return write
