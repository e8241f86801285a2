"""Gross margin per customer after LLM cost: what a customer was billed for a period against what
their traffic cost us at the model providers. Billing tools see the first, the gateway the second;
this puts them side by side and flags the customers we lose money on.

Revenue: invoices whose period starts in [start, end), except void ones. Drafts count: the latest
month is usually drafted but not yet finalised, and leaving it out would show its LLM cost against
no revenue. Revenue is net of discounts and tax (subtotal - discount) and of the credit notes on
those invoices (their amount less their tax), whenever they were issued. Billing is in arrears,
so the month in progress has no invoice yet: its rows show LLM cost against no revenue, and a
page should offer completed months.

LLM cost: every usage-ledger row of the customer's organisation in [start, end), failed attempts
included (a provider may bill them), summed as micro-USD by DuckDB over the usage lake
(`core.billing.usage_lake`) and converted once per customer.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing import catalog, fx, usage_lake
from core.billing.metrics_frames import as_instant, check_currency
from core.billing.models import (
    CreditNote,
    Customer,
    Invoice,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
)
from core.billing.periods import label
from core.db import unit_of_work

NO_PLAN = "(no plan)"
CUSTOMER_COLUMNS = [
    "customer_id",
    "organisation_id",
    "customer",
    "plan",
    "revenue",
    "llm_cost",
    "gross_margin",
    "margin_pct",
    "losing_money",
]
PLAN_COLUMNS = [
    "plan",
    "customers",
    "customers_losing_money",
    "revenue",
    "llm_cost",
    "gross_margin",
    "margin_pct",
    "losing_money",
]


@dataclass(frozen=True)
class Margin:
    currency: str
    start: datetime
    end: datetime
    customers: pd.DataFrame  # CUSTOMER_COLUMNS, worst gross margin first
    plans: pd.DataFrame  # PLAN_COLUMNS, worst first


def margin_pct(gross_margin: int, revenue: int) -> float:
    return round(100 * gross_margin / revenue, 1) if revenue else math.nan


def _revenue(
    session: Session, start: datetime, end: datetime, currency: str | None, target: str
) -> dict[int, int]:
    in_range = (
        select(Invoice.id)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.period_start >= start, Invoice.period_start < end, Invoice.status != "void")
    )
    if currency is not None:
        in_range = in_range.where(Customer.currency == target)
    credited_rows = session.execute(
        select(CreditNote.invoice_id, func.sum(CreditNote.amount - CreditNote.tax))
        .where(CreditNote.invoice_id.in_(in_range.scalar_subquery()))
        .group_by(CreditNote.invoice_id)
    )
    credited = {inv_id: int(net) for inv_id, net in credited_rows}
    revenue: dict[int, int] = defaultdict(int)
    rows = session.execute(
        select(
            Invoice.id, Invoice.customer_id, Invoice.currency, Invoice.subtotal, Invoice.discount
        ).where(Invoice.id.in_(in_range.scalar_subquery()))
    )
    for inv_id, cust_id, inv_currency, subtotal, discount in rows:
        net = subtotal - discount - credited.get(inv_id, 0)
        revenue[cust_id] += fx.convert(net, inv_currency, target)
    return revenue


def usage_cost_micros(
    session: Session, start: datetime, end: datetime, organisations: pd.DataFrame
) -> dict[int, int]:
    """LLM cost in micro-USD per customer id. `organisations` maps organisation_id ->
    customer_id; the cost per organisation is summed by DuckDB over the usage lake, so ten
    million ledger rows cost a fraction of a second instead of a stream through the ORM."""
    by_org = usage_lake.llm_cost_by_organisation(session, start, end)
    mapping = dict(zip(organisations["organisation_id"], organisations["customer_id"], strict=True))
    costs: dict[int, int] = defaultdict(int)
    for org, micros in by_org.items():
        if org in mapping:
            costs[int(mapping[org])] += micros
    return dict(costs)


def _plans(session: Session, start: datetime, end: datetime) -> dict[int, str]:
    """Each customer's main licensed product over the range: the item with the largest
    (monthly) charge among those in force at some point of it; the latest one on a tie."""
    rows = session.execute(
        select(
            Subscription.customer_id,
            Product.name,
            Price,
            SubscriptionItem.quantity,
            SubscriptionItem.started_at,
        )
        .join(Subscription, Subscription.id == SubscriptionItem.subscription_id)
        .join(Price, Price.id == SubscriptionItem.price_id)
        .join(Product, Product.id == Price.product_id)
        .where(
            Price.scheme.in_(catalog.LICENSED),
            SubscriptionItem.started_at < end,
            (SubscriptionItem.ended_at.is_(None)) | (SubscriptionItem.ended_at > start),
        )
    )
    best: dict[int, tuple[int, datetime, str]] = {}
    for cust_id, product, price, quantity, started in rows:
        amount = catalog.charge(price, quantity) // (12 if price.interval == "year" else 1)
        if cust_id not in best or (amount, started) > best[cust_id][:2]:
            best[cust_id] = (amount, started, product)
    return {c: v[2] for c, v in best.items()}


def margin_frames(
    session: Session, start: datetime, end: datetime, currency: str | None = None
) -> Margin:
    target = check_currency(currency)
    customers_stmt = select(Customer.id, Customer.organisation_id, Customer.name)
    if currency is not None:
        customers_stmt = customers_stmt.where(Customer.currency == target)
    known = session.execute(customers_stmt).all()
    organisations = pd.DataFrame(
        [(org, cust) for cust, org, _ in known], columns=["organisation_id", "customer_id"]
    ).astype("int64")
    revenue = _revenue(session, start, end, currency, target)
    cost = {
        c: fx.micros_usd_to_minor(m, target)
        for c, m in usage_cost_micros(session, start, end, organisations).items()
    }
    plans = _plans(session, start, end)
    rows = []
    for cust_id, org_id, name in known:
        income, spent = revenue.get(cust_id, 0), cost.get(cust_id, 0)
        if not income and not spent:  # nothing billed, nothing spent: no line to show
            continue
        plan, gross = plans.get(cust_id, NO_PLAN), income - spent
        rows.append(
            (
                cust_id,
                org_id,
                name,
                plan,
                income,
                spent,
                gross,
                margin_pct(gross, income),
                spent > income,
            )
        )
    per_customer = pd.DataFrame(rows, columns=CUSTOMER_COLUMNS).astype(
        {c: "int64" for c in ("customer_id", "organisation_id", "revenue", "llm_cost")}
        | {"gross_margin": "int64", "margin_pct": "float64", "losing_money": "bool"}
    )
    per_customer = per_customer.sort_values(
        ["gross_margin", "customer_id"], kind="stable"
    ).reset_index(drop=True)
    per_plan = (
        per_customer.groupby("plan", as_index=False)
        .agg(
            customers=("customer_id", "size"),
            customers_losing_money=("losing_money", "sum"),
            revenue=("revenue", "sum"),
            llm_cost=("llm_cost", "sum"),
            gross_margin=("gross_margin", "sum"),
        )
        .astype({"customers": "int64", "customers_losing_money": "int64"})
    )
    per_plan["margin_pct"] = [
        margin_pct(int(g), int(r))
        for g, r in zip(per_plan["gross_margin"], per_plan["revenue"], strict=True)
    ]
    per_plan["losing_money"] = per_plan["llm_cost"] > per_plan["revenue"]
    per_plan = per_plan.sort_values(["gross_margin", "plan"], kind="stable")
    return Margin(target, start, end, per_customer, per_plan[PLAN_COLUMNS].reset_index(drop=True))


def latest_revenue_month(actor: Actor) -> str | None:
    """The newest month ("2026-10") with revenue (a non-void invoice); None when none has any.
    A page whose month holds nothing offers this one instead of an empty table."""
    require(actor, Permission.BILLING_READ, action="billing.metrics.read")
    with unit_of_work(read_only=True) as session:
        latest = session.scalar(
            select(func.max(Invoice.period_start)).where(Invoice.status != "void")
        )
    return label(latest) if latest is not None else None


def margin(
    actor: Actor, start: date | datetime, end: date | datetime, currency: str | None = None
) -> Margin:
    """Revenue, LLM cost and gross margin per customer and per plan for [start, end) (dates are
    their midnight UTC, so `end` is excluded)."""
    require(actor, Permission.BILLING_READ, action="billing.metrics.read")
    with unit_of_work(read_only=True) as session:
        return margin_frames(session, as_instant(start), as_instant(end), currency)
