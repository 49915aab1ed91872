"""Lending Club loans going bad (``configs/lending_club``): the config does most of the work.

The query, label (``bad``) and candidates come from the config. The model adds two
income features, because a linear learner (VW) sees income's effect as roughly
multiplicative and the loan's size only relative to what the borrower earns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.model import Model


class LendingClub(Model):
    def prepare(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Add ``log_annual_inc`` and ``loan_to_income``; a pure function of ``rows``."""
        rows = rows.copy()
        income = rows["annual_inc"].astype("float64")
        rows["log_annual_inc"] = np.log1p(income.clip(lower=0))
        # Zero income (two loans) leaves the ratio missing: the config's default fills it.
        rows["loan_to_income"] = rows["funded_amnt"].astype("float64") / income.where(income > 0)
        return rows
