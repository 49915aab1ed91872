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
        # numpy on whole columns, one assign at the end: a serving request (about 100 rows)
        # pays pandas' per-operation cost once instead of a dozen times.
        def number(name: str) -> np.ndarray:
            return pd.to_numeric(rows[name], errors="coerce").to_numpy(np.float64, na_value=np.nan)

        revenue = _positive(number("annual_revenue"))
        amount = number("requested_amount")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            derived = {
                "credit_margin": number("credit_score") - number("min_credit_score"),
                "revenue_ratio": np.log(revenue / _positive(number("min_annual_revenue"))),
                "tenure_ratio": np.log(
                    (number("months_in_business") + 1) / (number("min_months_in_business") + 1)
                ),
                "amount_to_max": amount / _positive(number("max_amount")),
                "affordability": amount / (_positive(number("avg_monthly_deposits")) * 12),
                "debt_to_revenue": number("existing_debt") / revenue,
                "industry_served": np.where(_serves(rows), "yes", "no"),
            }
        return rows.assign(**derived)


def _serves(rows: pd.DataFrame) -> np.ndarray:
    """Whether the product's comma-separated industries include the business's industry.

    Vectorised per industry (a few dozen), not per row.
    """
    listed = ("," + rows["industries_served"].fillna("").astype(str) + ",").to_numpy(object)
    industry = rows["industry"].astype(str).to_numpy()
    served = np.zeros(len(rows), dtype=bool)
    for name in pd.unique(industry):
        mask = industry == name
        needle = f",{name},"
        served[mask] = [needle in text for text in listed[mask]]
    return served


def _positive(values: np.ndarray) -> np.ndarray:
    """Zero and negatives as missing, so ratios are NaN (then defaulted), not inf."""
    return np.where(values > 0, values, np.nan)
