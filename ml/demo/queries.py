"""The demo marketplace's training query: one row per application with its business,
product and outcome, for applications submitted in [:start, :end). The lender_match
model subclass builds on it."""

from __future__ import annotations

APPLICATIONS_IN_WINDOW = """
    SELECT a.application_id, a.business_id, a.product_id, a.submitted_at, a.requested_amount,
           b.industry, b.state, b.months_in_business, b.annual_revenue, b.avg_monthly_deposits,
           b.credit_score, b.existing_debt,
           p.lender_id, p.product_type, p.min_credit_score, p.min_annual_revenue,
           p.min_months_in_business, p.max_amount, p.industries_served,
           o.approved, o.funded_amount
    FROM applications a
    JOIN businesses b ON b.business_id = a.business_id
    JOIN loan_products p ON p.product_id = a.product_id
    JOIN outcomes o ON o.application_id = a.application_id
    WHERE a.submitted_at >= :start AND a.submitted_at < :end
    ORDER BY a.application_id
"""
