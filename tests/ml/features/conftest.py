"""A small config and frames exercising every feature and cross kind."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.config import ModelConfig, resolve


def make_config(**changes: Any) -> ModelConfig:
    raw: dict[str, Any] = {
        "name": "toy",
        "task": "binary",
        "model_class": "tests.toy:Toy",
        "source": {"url": "sqlite:///toy.db"},
        "windows": {"time_column": "t", "relative": {"test_days": 10, "train_days": 30}},
        "features": [
            {"name": "income", "type": "numeric", "default": "median", "namespace": "num"},
            {"name": "debt", "type": "numeric", "namespace": "num"},
            {
                "name": "score",
                "type": "numeric",
                "buckets": {"edges": [600, 700]},
                "namespace": "b",
            },
            {
                "name": "age",
                "type": "numeric",
                "default": 0,
                "buckets": {"quantiles": 4},
                "namespace": "b",
            },
            {"name": "city", "type": "categorical", "min_count": 2, "namespace": "c"},
            {"name": "kind", "type": "categorical", "default": "mode", "namespace": "k"},
            {"name": "region", "type": "categorical", "cross_only": True, "namespace": "r"},
        ],
        "crosses": [
            {"features": ["income", "debt"]},
            {"features": ["score", "kind"]},
            {"features": ["region", "kind"]},
            {"features": ["debt", "city"]},
        ],
    }
    raw.update(changes)
    return resolve(raw, "toy.json")


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 1, n)
    income[rng.random(n) < 0.2] = np.nan
    debt = rng.normal(100, 30, n)
    debt[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "debt": debt,
            "score": rng.integers(500, 800, n).astype(float),
            "age": rng.integers(0, 50, n).astype(float),
            "city": rng.choice(["a", "b", "c", "rare place"], n, p=[0.5, 0.3, 0.19, 0.01]),
            "kind": pd.Series(rng.choice(["x", "y", None], n, p=[0.6, 0.3, 0.1]), dtype="str"),
            "region": rng.choice(["north", "south"], n),
        }
    )


@pytest.fixture
def config() -> ModelConfig:
    return make_config()


@pytest.fixture
def train() -> pd.DataFrame:
    return make_frame(2000, seed=1)
