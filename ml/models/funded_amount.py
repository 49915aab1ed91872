"""Regression on the demo marketplace: the amount an approved application is funded.

Same rows and derived columns as :mod:`ml.models.lender_match` (so its ``prepare``
is inherited), restricted to approved applications by the config's query.
"""

from __future__ import annotations

from ml.models.lender_match import LenderMatch


class FundedAmount(LenderMatch):
    pass
