"""The fixed vocabulary of the demo marketplace: industries, states, loan product types.

Weights are relative frequencies. The long tail is deliberate: models must cope
with rare categorical levels (a few industries appear in well under 1% of rows).
"""

from __future__ import annotations

from typing import NamedTuple


class Industry(NamedTuple):
    weight: float  # share of businesses
    revenue_multiplier: float  # typical revenue relative to the median business
    risk: float  # hidden: lenders' dislike of the industry (higher = fewer approvals)


INDUSTRIES: dict[str, Industry] = {
    "restaurants": Industry(14, 0.9, 0.5),
    "retail": Industry(12, 1.0, 0.2),
    "construction": Industry(11, 1.4, 0.3),
    "professional_services": Industry(10, 1.1, -0.3),
    "healthcare": Industry(8, 1.5, -0.4),
    "transportation": Industry(7, 1.2, 0.3),
    "auto_repair": Industry(5, 0.8, 0.1),
    "real_estate": Industry(5, 1.3, 0.0),
    "manufacturing": Industry(4.5, 2.0, -0.1),
    "wholesale": Industry(4, 2.2, 0.0),
    "beauty_personal_care": Industry(3.5, 0.6, 0.3),
    "fitness": Industry(2.5, 0.7, 0.4),
    "it_services": Industry(2.5, 1.2, -0.2),
    "cleaning_services": Industry(2, 0.6, 0.2),
    "landscaping": Industry(2, 0.7, 0.2),
    "hospitality": Industry(2, 1.1, 0.5),
    "ecommerce": Industry(1.8, 0.9, 0.3),
    "education": Industry(1.2, 0.8, -0.1),
    "agriculture": Industry(1, 1.3, 0.2),
    "legal_services": Industry(0.8, 1.2, -0.3),
    "dental": Industry(0.6, 1.4, -0.5),
    "veterinary": Industry(0.4, 1.1, -0.3),
    "cannabis": Industry(0.15, 1.0, 1.2),
    "firearms": Industry(0.1, 1.0, 0.8),
    "crypto_mining": Industry(0.05, 1.5, 1.5),
}

# Industries most lenders refuse; only some cash-advance and factoring products take them.
HIGH_RISK_INDUSTRIES = frozenset(name for name, ind in INDUSTRIES.items() if ind.risk >= 0.8)

# Roughly proportional to the number of small businesses per state.
STATES: dict[str, float] = {
    "CA": 12,
    "TX": 9,
    "FL": 7,
    "NY": 6,
    "PA": 4,
    "IL": 4,
    "OH": 3.5,
    "GA": 3.3,
    "NC": 3.2,
    "MI": 3,
    "NJ": 2.8,
    "VA": 2.6,
    "WA": 2.3,
    "AZ": 2.2,
    "MA": 2.1,
    "TN": 2.1,
    "IN": 2,
    "MD": 1.8,
    "MO": 1.8,
    "WI": 1.8,
    "CO": 1.8,
    "MN": 1.7,
    "SC": 1.6,
    "AL": 1.5,
    "LA": 1.4,
    "KY": 1.3,
    "OR": 1.3,
    "OK": 1.2,
    "CT": 1.1,
    "UT": 1,
    "IA": 0.95,
    "NV": 0.95,
    "AR": 0.9,
    "MS": 0.9,
    "KS": 0.9,
    "NM": 0.6,
    "NE": 0.6,
    "ID": 0.6,
    "WV": 0.5,
    "HI": 0.4,
    "NH": 0.4,
    "ME": 0.4,
    "RI": 0.3,
    "MT": 0.3,
    "DE": 0.3,
    "SD": 0.27,
    "ND": 0.23,
    "AK": 0.22,
    "DC": 0.2,
    "VT": 0.2,
    "WY": 0.17,
}


class ProductType(NamedTuple):
    weight: float  # how many lenders offer it
    min_credit_score: int
    min_annual_revenue: float
    min_months_in_business: int
    max_amount: float
    intercept: float  # hidden: baseline approval log-odds
    credit_weight: float  # hidden: how much the credit score matters


PRODUCT_TYPES: dict[str, ProductType] = {
    "term_loan": ProductType(3, 640, 150e3, 12, 500e3, 0.0, 1.0),
    "line_of_credit": ProductType(3, 650, 100e3, 12, 250e3, 0.1, 1.0),
    "sba_loan": ProductType(1.5, 680, 250e3, 24, 5e6, -0.6, 1.3),
    "equipment_financing": ProductType(2, 600, 100e3, 6, 1e6, 0.3, 0.8),
    "merchant_cash_advance": ProductType(3, 500, 60e3, 4, 250e3, 0.8, 0.4),
    "invoice_factoring": ProductType(1.5, 550, 120e3, 6, 1e6, 0.4, 0.6),
}

LENDER_PREFIXES = (
    "Harbor",
    "Summit",
    "Keystone",
    "Pioneer",
    "Bluebird",
    "Granite",
    "Lighthouse",
    "Meridian",
)
LENDER_SUFFIXES = ("Capital", "Funding", "Lending", "Finance", "Credit")
