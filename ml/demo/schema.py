"""Tables of the demo lending marketplace, as SQLAlchemy Core metadata.

One definition gives each database its own DDL (SQLite, Postgres, DuckDB, ...).
The indexes are the ones the demo models' queries use: applications by time
window (training) and by business (serving one entity).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

businesses = sa.Table(
    "businesses",
    metadata,
    sa.Column("business_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("industry", sa.String(64), nullable=False),
    sa.Column("state", sa.String(2), nullable=False),
    sa.Column("months_in_business", sa.Integer, nullable=False),
    sa.Column("annual_revenue", sa.Float, comment="USD; missing for ~20% of businesses"),
    sa.Column("avg_monthly_deposits", sa.Float, comment="USD; missing for ~8%"),
    sa.Column("credit_score", sa.Integer, comment="300-850; missing for ~5%"),
    sa.Column("existing_debt", sa.Float, nullable=False, comment="USD"),
)

lenders = sa.Table(
    "lenders",
    metadata,
    sa.Column("lender_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(64), nullable=False),
)

loan_products = sa.Table(
    "loan_products",
    metadata,
    sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("lender_id", sa.Integer, nullable=False),
    sa.Column("product_type", sa.String(32), nullable=False),
    sa.Column("min_credit_score", sa.Integer, nullable=False),
    sa.Column("min_annual_revenue", sa.Float, nullable=False),
    sa.Column("min_months_in_business", sa.Integer, nullable=False),
    sa.Column("max_amount", sa.Float, nullable=False),
    sa.Column("industries_served", sa.Text, nullable=False, comment="comma-separated industries"),
)

applications = sa.Table(
    "applications",
    metadata,
    sa.Column("application_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("business_id", sa.Integer, nullable=False),
    sa.Column("product_id", sa.Integer, nullable=False),
    sa.Column("submitted_at", sa.DateTime, nullable=False),
    sa.Column("requested_amount", sa.Float, nullable=False),
    sa.Index("ix_applications_submitted_at", "submitted_at"),
    # By business, newest last: serving's "latest requested amount" reads one index entry.
    sa.Index("ix_applications_business_id", "business_id", "submitted_at"),
    sa.Index("ix_applications_product_id", "product_id"),
)

outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("application_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("approved", sa.Integer, nullable=False, comment="1 approved, 0 declined"),
    sa.Column("funded_amount", sa.Float, comment="USD; only for approved applications"),
    sa.Column("decided_at", sa.DateTime, nullable=False),
)

# Records what generated the data, so a rerun with the same options can skip the work.
demo_meta = sa.Table(
    "demo_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

DATA_TABLES: tuple[sa.Table, ...] = (businesses, lenders, loan_products, applications, outcomes)
