"""The demo model: how likely a loan product is to approve a business's application.

The config holds the query, the label (``approved``) and the raw features; this
class adds what a credit analyst would look at first: how the business measures
up to each product's requirements. ``prepare`` runs on training rows and on one
business's candidate products in serving alike, so it only uses the row itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.model import Model


class LenderMatch(Model):
    def prepare(self, rows: pd.DataFrame) -> pd.DataFrame:
        rows = rows.copy()
        revenue = _positive(rows["annual_revenue"])
        rows["credit_margin"] = rows["credit_score"] - rows["min_credit_score"]
        rows["revenue_ratio"] = np.log(revenue / _positive(rows["min_annual_revenue"]))
        rows["tenure_ratio"] = np.log(
            (rows["months_in_business"] + 1) / (rows["min_months_in_business"] + 1)
        )
        rows["amount_to_max"] = rows["requested_amount"] / _positive(rows["max_amount"])
        rows["affordability"] = rows["requested_amount"] / (
            _positive(rows["avg_monthly_deposits"]) * 12
        )
        rows["debt_to_revenue"] = rows["existing_debt"] / revenue
        rows["industry_served"] = np.where(_serves(rows), "yes", "no")
        return rows


def _serves(rows: pd.DataFrame) -> np.ndarray:
    """Whether the product's comma-separated industries include the business's industry.

    Vectorised per industry (a few dozen), not per row.
    """
    listed = "," + rows["industries_served"].fillna("").astype(str) + ","
    industry = rows["industry"].astype(str).to_numpy()
    served = np.zeros(len(rows), dtype=bool)
    for name in pd.unique(industry):
        mask = industry == name
        served[mask] = listed[mask].str.contains(f",{name},", regex=False).to_numpy()
    return served


def _positive(values: pd.Series) -> pd.Series:
    """Numbers with zero and negatives as missing, so ratios are NaN (then defaulted), not inf."""
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    return numbers.where(numbers > 0)
