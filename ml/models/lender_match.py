"""The demo model: how likely a loan product is to approve a business's application.

The config holds the query, the label (``approved``) and the raw features; this
class adds what a credit analyst would look at first: how the business measures
up to each product's requirements. ``derive`` runs on training rows and on one
business's candidate products in serving alike, so it only uses the row itself.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.model import Model


class LenderMatch(Model):
    def derive(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        def number(name: str) -> np.ndarray:
            return as_numbers(columns[name])

        revenue = _positive(number("annual_revenue"))
        amount = number("requested_amount")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return {
                "credit_margin": number("credit_score") - number("min_credit_score"),
                "revenue_ratio": np.log(revenue / _positive(number("min_annual_revenue"))),
                "tenure_ratio": np.log(
                    (number("months_in_business") + 1) / (number("min_months_in_business") + 1)
                ),
                "amount_to_max": amount / _positive(number("max_amount")),
                "affordability": amount / (_positive(number("avg_monthly_deposits")) * 12),
                "debt_to_revenue": number("existing_debt") / revenue,
                "industry_served": np.where(
                    _serves(columns["industry"], columns["industries_served"]), "yes", "no"
                ).astype(object),
            }


def as_numbers(values: np.ndarray) -> np.ndarray:
    """float64, missing (and anything that is not a number) as NaN."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):  # text, pd.NA...
        numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        return numbers.to_numpy(np.float64, na_value=np.nan)


def _serves(industry: np.ndarray, industries_served: np.ndarray) -> np.ndarray:
    """Whether the product's comma-separated industries include the business's industry.

    Arrow's substring match, once per distinct industry (a few dozen), not per row.
    """
    industries = pa.array(industry, type=pa.string(), from_pandas=True)
    listed = pc.fill_null(pa.array(industries_served, type=pa.string(), from_pandas=True), "")
    listed = pc.binary_join_element_wise(",", listed, ",", "")  # ",a,b," (separator "")
    served = np.zeros(len(industries), dtype=bool)
    for name in pc.unique(industries).to_pylist():
        if name is not None:
            hit = pc.and_(pc.equal(industries, name), pc.match_substring(listed, f",{name},"))
            served |= pc.fill_null(hit, False).to_numpy(zero_copy_only=False)
    return served


def _positive(values: np.ndarray) -> np.ndarray:
    """Zero and negatives as missing, so ratios are NaN (then defaulted), not inf."""
    return np.where(values > 0, values, np.nan)
