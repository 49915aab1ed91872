"""Synthetic small-business lending marketplace, generated block by block.

Businesses apply to loan products of ~40 lenders; each application is approved
or declined by a hidden nonlinear rule (credit, revenue, tenure, affordability,
industry, lender appetite) with noise and with lenders tightening over the two
years of history, so models trained on old windows decay on new ones.

Determinism: the catalog and every block of :data:`BLOCK_SIZE` businesses have
their own random stream derived from the seed, so the output depends only on
(seed, businesses, end date), and memory stays bounded however many businesses
are asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from ml.demo.domain import (
    HIGH_RISK_INDUSTRIES,
    INDUSTRIES,
    LENDER_PREFIXES,
    LENDER_SUFFIXES,
    PRODUCT_TYPES,
    STATES,
)

# Bump when the generated data changes, so stored demo data is rebuilt instead of reused.
GENERATOR_VERSION = "1"
BLOCK_SIZE = 5_000
DEFAULT_END_DATE = date(2026, 11, 30)
HISTORY_DAYS = 730
N_LENDERS = len(LENDER_PREFIXES) * len(LENDER_SUFFIXES)

_INDUSTRY_NAMES = np.array(list(INDUSTRIES))
_STATE_NAMES = np.array(list(STATES))
_TYPE_NAMES = list(PRODUCT_TYPES)


@dataclass(frozen=True)
class DemoSpec:
    """What to generate. Equal specs give byte-identical data."""

    businesses: int = 20_000
    seed: int = 42
    end_date: date = DEFAULT_END_DATE

    @property
    def start(self) -> datetime:
        return datetime.combine(self.end_date, datetime.min.time()) - timedelta(days=HISTORY_DAYS)


@dataclass(frozen=True)
class Catalog:
    """Lenders and their loan products, plus the hidden parameters of the approval rule."""

    lenders: pd.DataFrame
    products: pd.DataFrame
    lender_appetite: np.ndarray  # per product: hidden log-odds shift of its lender
    popularity: np.ndarray  # per product: hidden share of applications it attracts
    serves: np.ndarray  # bool [product, industry]


@dataclass(frozen=True)
class Block:
    businesses: pd.DataFrame
    applications: pd.DataFrame
    outcomes: pd.DataFrame


def _weights(values: object) -> np.ndarray:
    w = np.asarray(values, dtype=float)
    return w / w.sum()


def make_catalog(seed: int) -> Catalog:
    rng = np.random.default_rng([seed, 0])
    names = [f"{p} {s}" for s in LENDER_SUFFIXES for p in LENDER_PREFIXES]
    order = rng.permutation(N_LENDERS)
    lenders = pd.DataFrame(
        {"lender_id": np.arange(1, N_LENDERS + 1), "name": [names[i] for i in order]}
    )
    appetite = rng.normal(0.0, 0.5, N_LENDERS)
    type_weights = _weights([t.weight for t in PRODUCT_TYPES.values()])
    mainstream = [i for i, name in enumerate(INDUSTRIES) if name not in HIGH_RISK_INDUSTRIES]
    high_risk = [i for i, name in enumerate(INDUSTRIES) if name in HIGH_RISK_INDUSTRIES]

    rows: list[dict[str, object]] = []
    lender_shift: list[float] = []
    serves: list[np.ndarray] = []
    for lender in range(N_LENDERS):  # 40 lenders: a loop is clearer than vectorising
        n_products = int(rng.integers(1, 5))
        for type_name in rng.choice(_TYPE_NAMES, n_products, replace=False, p=type_weights):
            t = PRODUCT_TYPES[type_name]
            served = np.zeros(len(INDUSTRIES), dtype=bool)
            if rng.random() < 0.55:
                served[mainstream] = True
            else:
                served[mainstream] = rng.random(len(mainstream)) < 0.5
                served[rng.choice(mainstream, 3, replace=False)] = True
            if type_name in ("merchant_cash_advance", "invoice_factoring") and rng.random() < 0.4:
                served[high_risk] = True
            rows.append(
                {
                    "product_id": len(rows) + 1,
                    "lender_id": lender + 1,
                    "product_type": str(type_name),
                    "min_credit_score": int(
                        np.clip(round((t.min_credit_score + rng.normal(0, 25)) / 10) * 10, 450, 760)
                    ),
                    "min_annual_revenue": float(
                        round(t.min_annual_revenue * rng.lognormal(0, 0.35), -4)
                    ),
                    "min_months_in_business": max(
                        1, round(t.min_months_in_business * rng.lognormal(0, 0.4))
                    ),
                    "max_amount": float(round(t.max_amount * rng.lognormal(0, 0.4), -4)),
                    "industries_served": ",".join(_INDUSTRY_NAMES[served]),
                }
            )
            lender_shift.append(appetite[lender])
            serves.append(served)
    products = pd.DataFrame(rows)
    popularity = rng.lognormal(0.0, 0.6, len(products))
    return Catalog(lenders, products, np.array(lender_shift), popularity, np.array(serves))


def iter_blocks(spec: DemoSpec, catalog: Catalog) -> Iterator[Block]:
    """Yield the data block by block; ids are contiguous across blocks."""
    next_application_id = 1
    for index, first in enumerate(range(0, spec.businesses, BLOCK_SIZE)):
        n = min(BLOCK_SIZE, spec.businesses - first)
        block = _generate_block(spec, catalog, index, first + 1, next_application_id, n)
        next_application_id += len(block.applications)
        yield block


def _generate_block(
    spec: DemoSpec,
    cat: Catalog,
    index: int,
    first_business_id: int,
    first_application_id: int,
    n: int,
) -> Block:
    rng = np.random.default_rng([spec.seed, 1, index])
    ind_info = np.array([(i.revenue_multiplier, i.risk) for i in INDUSTRIES.values()])

    # --- businesses: true values drive approvals; the recorded ones have gaps.
    industry = rng.choice(len(INDUSTRIES), n, p=_weights([i.weight for i in INDUSTRIES.values()]))
    state = rng.choice(len(STATES), n, p=_weights(list(STATES.values())))
    months = np.clip(np.round(rng.lognormal(3.3, 1.0, n)), 1, 600).astype(np.int64)
    seasoning = np.log1p(months / 12)
    revenue = np.round(
        rng.lognormal(13.2, 1.0, n) * ind_info[industry, 0] * (1 + 0.25 * seasoning), -2
    )
    deposits = np.round(revenue / 12 * rng.lognormal(0.0, 0.2, n))
    credit = np.clip(
        np.round(rng.normal(665, 65, n) + 12 * seasoning - 20 * ind_info[industry, 1]), 300, 850
    )
    debt = np.where(rng.random(n) < 0.35, 0.0, np.round(revenue * rng.lognormal(-1.6, 0.9, n), -2))
    young = months < 12
    businesses = pd.DataFrame(
        {
            "business_id": np.arange(first_business_id, first_business_id + n),
            "industry": _INDUSTRY_NAMES[industry],
            "state": _STATE_NAMES[state],
            "months_in_business": months,
            "annual_revenue": np.where(rng.random(n) < 0.15 + 0.25 * young, np.nan, revenue),
            "avg_monthly_deposits": np.where(rng.random(n) < 0.08, np.nan, deposits),
            "credit_score": pd.array(np.where(rng.random(n) < 0.05, np.nan, credit), dtype="Int64"),
            "existing_debt": debt,
        }
    )

    # --- shopping sessions: a business applies to several products at once.
    sessions = 1 + rng.poisson(0.6, n)
    sess_biz = np.repeat(np.arange(n), sessions)
    n_sess = len(sess_biz)
    u = rng.random(n_sess)
    sess_t = np.sqrt(1 + 3 * u) - 1  # inverse CDF of a density growing linearly over time
    requested = np.clip(
        np.round(revenue[sess_biz] * rng.lognormal(-1.7, 0.6, n_sess), -3), 5e3, 5e6
    )
    n_products = len(cat.products)
    per_session = np.minimum(1 + rng.poisson(5.25, n_sess), n_products)
    # Gumbel top-k: businesses favour popular products they believe they qualify for.
    min_cs = cat.products["min_credit_score"].to_numpy()
    appeal = np.log(cat.popularity)[None, :] + 0.8 * np.tanh(
        (credit[sess_biz][:, None] - min_cs) / 60
    )
    ranked = np.argsort(-(appeal + rng.gumbel(size=(n_sess, n_products))), axis=1)
    sess, slot = np.nonzero(np.arange(n_products)[None, :] < per_session[:, None])
    product = ranked[sess, slot]
    biz = sess_biz[sess]
    t = sess_t[sess]
    n_apps = len(product)
    seconds = np.minimum(
        t * HISTORY_DAYS * 86_400 + rng.integers(0, 6 * 3600, n_apps), HISTORY_DAYS * 86_400 - 1
    )
    submitted = np.datetime64(spec.start, "s") + seconds.astype("timedelta64[s]")
    applications = pd.DataFrame(
        {
            "application_id": np.arange(first_application_id, first_application_id + n_apps),
            "business_id": first_business_id + biz,
            "product_id": product + 1,
            "submitted_at": submitted,
            "requested_amount": requested[sess],
        }
    )

    # --- the hidden approval rule.
    p = cat.products
    prod_type = p["product_type"].to_numpy()[product]
    type_params = np.array(
        [(PRODUCT_TYPES[name].intercept, PRODUCT_TYPES[name].credit_weight) for name in prod_type]
    )
    amount = requested[sess]
    max_amount = p["max_amount"].to_numpy()[product]
    affordability = amount / (deposits[biz] * 12)
    logit = (
        -2.0
        + type_params[:, 0]
        + cat.lender_appetite[product]
        + 1.8
        * type_params[:, 1]
        * (1 + 0.5 * t)
        * np.tanh((credit[biz] - min_cs[product] - 40 * t) / 40)
        + 1.0 * np.tanh(np.log(revenue[biz] / p["min_annual_revenue"].to_numpy()[product]))
        + 0.8
        * np.tanh(np.log((months[biz] + 1) / (p["min_months_in_business"].to_numpy()[product] + 1)))
        - 3.0 * np.maximum(amount / max_amount - 1, 0)
        - 1.5 * np.maximum(affordability - 0.35, 0)
        - 1.2 * np.maximum(debt[biz] / revenue[biz] - 0.4, 0)
        + 0.8 * (prod_type == "merchant_cash_advance") * np.tanh(np.log(1 / affordability))
        - 0.6 * ind_info[industry[biz], 1]
        - 3.5 * ~cat.serves[product, industry[biz]]
        - 0.6 * t  # the market tightens over the two years (and credit bars rise, above)
        + rng.normal(0.0, 0.4, n_apps)
    )
    approved = rng.random(n_apps) < 1 / (1 + np.exp(-logit))
    funded = np.where(
        approved, np.round(np.minimum(amount, max_amount) * rng.beta(6, 2, n_apps), -2), np.nan
    )
    delay = np.maximum(rng.exponential(36 * 3600, n_apps), 600).astype("timedelta64[s]")
    outcomes = pd.DataFrame(
        {
            "application_id": applications["application_id"].to_numpy(),
            "approved": approved.astype(np.int64),
            "funded_amount": funded,
            "decided_at": submitted + delay,
        }
    )
    return Block(businesses, applications, outcomes)
