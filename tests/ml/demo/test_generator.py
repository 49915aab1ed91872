"""The demo generator: deterministic, realistic, and streamed in blocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.demo import schema
from ml.demo.domain import INDUSTRIES
from ml.demo.fingerprint import TableHasher
from ml.demo.generator import BLOCK_SIZE, DemoSpec, iter_blocks, make_catalog


def _generate(spec: DemoSpec) -> dict[str, pd.DataFrame]:
    catalog = make_catalog(spec.seed)
    blocks = list(iter_blocks(spec, catalog))
    return {
        "lenders": catalog.lenders,
        "loan_products": catalog.products,
        "businesses": pd.concat([b.businesses for b in blocks], ignore_index=True),
        "applications": pd.concat([b.applications for b in blocks], ignore_index=True),
        "outcomes": pd.concat([b.outcomes for b in blocks], ignore_index=True),
    }


def _fingerprints(tables: dict[str, pd.DataFrame]) -> dict[str, object]:
    result = {}
    for name, frame in tables.items():
        hasher = TableHasher(schema.metadata.tables[name])
        hasher.update(frame)
        result[name] = hasher.result()
    return result


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    # Two full blocks and a partial one: exercises the block boundaries.
    return _generate(DemoSpec(businesses=2 * BLOCK_SIZE + 7, seed=7))


def test_same_spec_gives_identical_data(data: dict[str, pd.DataFrame]) -> None:
    again = _generate(DemoSpec(businesses=2 * BLOCK_SIZE + 7, seed=7))
    assert _fingerprints(again) == _fingerprints(data)
    for name, frame in data.items():
        pd.testing.assert_frame_equal(again[name], frame, obj=name)


def test_other_seed_gives_other_data(data: dict[str, pd.DataFrame]) -> None:
    other = _fingerprints(_generate(DemoSpec(businesses=2 * BLOCK_SIZE + 7, seed=8)))
    ours = _fingerprints(data)
    assert all(other[name] != ours[name] for name in ("businesses", "applications", "outcomes"))


def test_a_larger_spec_extends_a_smaller_one() -> None:
    # Each block has its own stream: the first businesses do not depend on how many follow.
    small = _generate(DemoSpec(businesses=BLOCK_SIZE, seed=3))
    large = _generate(DemoSpec(businesses=BLOCK_SIZE + 100, seed=3))
    pd.testing.assert_frame_equal(large["businesses"].iloc[:BLOCK_SIZE], small["businesses"])


def test_ids_are_contiguous_and_keys_consistent(data: dict[str, pd.DataFrame]) -> None:
    businesses, apps, outcomes = data["businesses"], data["applications"], data["outcomes"]
    assert businesses["business_id"].tolist() == list(range(1, len(businesses) + 1))
    assert apps["application_id"].tolist() == list(range(1, len(apps) + 1))
    assert outcomes["application_id"].equals(apps["application_id"])
    assert apps["business_id"].isin(businesses["business_id"]).all()
    assert apps["product_id"].isin(data["loan_products"]["product_id"]).all()
    assert data["loan_products"]["lender_id"].isin(data["lenders"]["lender_id"]).all()
    # A business applies to a product at most once per shopping session: no exact duplicates.
    assert not apps.duplicated(["business_id", "product_id", "submitted_at"]).any()


def test_marketplace_shape(data: dict[str, pd.DataFrame]) -> None:
    n = len(data["businesses"])
    assert len(data["lenders"]) == 40
    assert 60 <= len(data["loan_products"]) <= 140
    assert 8 * n <= len(data["applications"]) <= 12 * n  # ~10 applications per business
    spec = DemoSpec()
    submitted = data["applications"]["submitted_at"]
    assert submitted.min() >= pd.Timestamp(spec.start)
    assert submitted.max() < pd.Timestamp(spec.end_date)
    assert (submitted.max() - submitted.min()).days > 700


def test_realistic_missingness_skew_and_rare_levels(data: dict[str, pd.DataFrame]) -> None:
    businesses = data["businesses"]
    missing = businesses.isna().mean()
    assert missing["annual_revenue"] == pytest.approx(0.20, abs=0.02)
    assert missing["credit_score"] == pytest.approx(0.05, abs=0.01)
    assert missing["avg_monthly_deposits"] == pytest.approx(0.08, abs=0.015)
    assert (
        missing[["business_id", "industry", "state", "months_in_business", "existing_debt"]].sum()
        == 0
    )
    for column in ("annual_revenue", "existing_debt"):
        assert businesses[column].mean() > 1.5 * businesses[column].median(), column
    requested = data["applications"]["requested_amount"]
    assert requested.mean() > 1.5 * requested.median()
    shares = businesses["industry"].value_counts(normalize=True)
    assert (shares < 0.005).sum() >= 3, "some industries should be rare"
    assert set(shares.index) <= set(INDUSTRIES)
    assert businesses["credit_score"].dropna().between(300, 850).all()


def test_outcomes_follow_a_learnable_drifting_rule(data: dict[str, pd.DataFrame]) -> None:
    apps = data["applications"].merge(data["outcomes"], on="application_id")
    apps = apps.merge(data["businesses"], on="business_id").merge(
        data["loan_products"], on="product_id"
    )
    assert 0.3 <= apps["approved"].mean() <= 0.5
    # Signal: clearing the product's credit bar matters a lot.
    above = apps["credit_score"] >= apps["min_credit_score"] + 40
    below = apps["credit_score"] < apps["min_credit_score"] - 40
    assert apps.loc[above, "approved"].mean() > apps.loc[below, "approved"].mean() + 0.25
    # Not served industries are rarely approved.
    served = [
        i in s.split(",") for i, s in zip(apps["industry"], apps["industries_served"], strict=True)
    ]
    assert (
        apps.loc[np.array(served), "approved"].mean()
        > 3 * apps.loc[~np.array(served), "approved"].mean()
    )
    # Drift: lenders tighten over the two years.
    halves = apps["submitted_at"] < apps["submitted_at"].median()
    assert apps.loc[halves, "approved"].mean() > apps.loc[~halves, "approved"].mean() + 0.02
    # Funded amounts exist exactly for approved applications and respect the product's cap.
    funded = apps["funded_amount"]
    assert funded.notna().equals(apps["approved"] == 1)
    approved = apps[apps["approved"] == 1]
    assert (
        approved["funded_amount"] <= approved[["requested_amount", "max_amount"]].min(axis=1)
    ).all()
    assert (apps["decided_at"] > apps["submitted_at"]).all()
