"""Demo billing: the catalogue in EUR, USD and GBP, a customer per organisation (VAT ids for most
EU businesses), five years of subscription history behind today's plans (trials, upgrades, seat
changes, churn and returns, coupons), imported usage, a dozen flat-plan customers whose heavy LLM
use costs more than they pay, and the invoice runs of the last three months: the two older ones
finalised and mostly paid, the last one left as drafts for finance to review."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.billing import catalog
from core.billing.catalog import PriceSpec
from core.billing.customers import ensure_customers
from core.billing.invoice_status import finalise
from core.billing.invoicing import build_drafts, load_facts, write_batch
from core.billing.models import (
    Coupon,
    Customer,
    Invoice,
    InvoiceRun,
    Payment,
    Price,
    Subscription,
    SubscriptionItem,
    UsageEvent,
)
from core.billing.periods import add_months, month_of
from core.billing.pricing import Tier
from core.billing.usage_lake import period_usage
from core.demo.registry import SeedContext, seeder
from core.llm.models import LLMPrice, LLMUsage
from core.orgs.models import Organisation
from core.privacy.identifiers import is_valid_vat

SEEDER = Actor.system("demo-seed")
PLAN_AMOUNTS = {  # minor units per month; pro is per seat
    "starter": {"EUR": 4900, "USD": 5900, "GBP": 4200},
    "pro": {"EUR": 2500, "USD": 2900, "GBP": 2200},
    "enterprise": {"EUR": 150000, "USD": 175000, "GBP": 130000},
}
PLAN_ORDER = ["starter", "pro", "enterprise"]
# VAT number shapes to fill with random digits until the check digits hold
_VAT_SHAPES = {
    "AT": "U########", "BE": "0#########", "DE": "#########", "DK": "########",
    "FI": "########", "IT": "###########", "SI": "########", "HR": "###########",
    "PL": "##########", "PT": "#########", "SE": "##########01", "NL": "#########B01",
    "LU": "########", "EE": "#########", "EL": "#########", "CZ": "########",
    "SK": "##########", "HU": "########", "LV": "###########", "LT": "#########",
}  # fmt: skip
HEAVY_LLM_CUSTOMERS = 12
HEAVY_CALL = {
    "actor": "service:product-api",
    "team": "product",
    "alias": "chat-large",
    "deployment": "openai-gpt-4o",
    "provider": "openai",
    "model": "gpt-4o",
    "status": "ok",
    "cache_hit": "",
}


def _catalogue(session: Session) -> None:
    products = {
        "starter": ("Starter plan", "Flat monthly fee; LLM usage included"),
        "pro": ("Pro plan", "Per seat; LLM tokens metered"),
        "enterprise": ("Enterprise plan", "Flat platform fee; LLM tokens and API calls metered"),
        "llm-tokens": ("LLM tokens", "Tokens through the gateway, per million"),
        "kb-storage": ("Knowledge-base storage", "Per started 10 GB package per month"),
        "api-calls": ("API calls", "Volume-tiered API calls"),
    }
    for key, (name, description) in products.items():
        catalog.add_product(session, SEEDER, key, name, description)
    scale = {"EUR": Decimal(1), "USD": Decimal("1.16"), "GBP": Decimal("0.88")}
    for currency in catalog.BILLING_CURRENCIES:
        c = currency.lower()
        f = scale[currency]
        specs = [
            PriceSpec(
                "starter",
                f"starter-{c}",
                currency,
                "flat",
                str(PLAN_AMOUNTS["starter"][currency]),
                "Monthly",
            ),
            PriceSpec(
                "pro",
                f"pro-{c}",
                currency,
                "per_seat",
                str(PLAN_AMOUNTS["pro"][currency]),
                "Per seat, monthly",
            ),
            PriceSpec(
                "enterprise",
                f"enterprise-{c}",
                currency,
                "flat",
                str(PLAN_AMOUNTS["enterprise"][currency]),
                "Platform fee, monthly",
            ),
            PriceSpec(
                "llm-tokens",
                f"llm-input-{c}",
                currency,
                "graduated",
                nickname="Input tokens",
                metric="llm_input_tokens",
                unit_label="input tokens",
                tiers=[
                    Tier(1_000_000, Decimal(0)),
                    Tier(100_000_000, Decimal("0.00005") * f),
                    Tier(None, Decimal("0.00003") * f),
                ],
            ),
            PriceSpec(
                "llm-tokens",
                f"llm-output-{c}",
                currency,
                "per_unit",
                str(Decimal("0.00015") * f),
                "Output tokens",
                metric="llm_output_tokens",
                unit_label="output tokens",
            ),
            PriceSpec(
                "kb-storage",
                f"kb-storage-{c}",
                currency,
                "package",
                str(int(1000 * f)),
                "Per 10 GB",
                metric="kb_storage_gb",
                unit_label="GB-months",
                package_size=10,
            ),
            PriceSpec(
                "api-calls",
                f"api-calls-{c}",
                currency,
                "volume",
                nickname="API calls",
                metric="api_calls",
                unit_label="API calls",
                tiers=[
                    Tier(10_000, Decimal("0.1") * f),
                    Tier(100_000, Decimal("0.08") * f),
                    Tier(None, Decimal("0.05") * f),
                ],
            ),
        ]
        for spec in specs:
            catalog.add_price(session, SEEDER, spec)
    catalog.add_coupon(
        session,
        SEEDER,
        "LAUNCH20",
        "Launch partner 20 % off",
        percent_off_bp=2000,
        duration="forever",
    )
    catalog.add_coupon(
        session,
        SEEDER,
        "WELCOME50",
        "Welcome: half off the first month",
        percent_off_bp=5000,
        duration="once",
    )
    catalog.add_coupon(
        session,
        SEEDER,
        "NONPROFIT25",
        "Non-profit 25 % for a year",
        percent_off_bp=2500,
        duration="repeating",
        duration_months=12,
    )


def _vat_id(rng: random.Random, country: str) -> str | None:
    prefix = "EL" if country == "GR" else country
    shape = _VAT_SHAPES.get(prefix)
    if shape is None:
        return None
    for _ in range(400):
        candidate = prefix + "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in shape)
        if is_valid_vat(candidate):
            return candidate
    return None


def _seats(rng: random.Random, employees: int) -> int:
    return max(2, min(400, int(employees * rng.uniform(0.04, 0.15))))


@dataclass
class _Planned:
    """A subscription and its items as rows, inserted in bulk at the end (thousands of
    subscriptions one ORM flush at a time would cost the demo seed seconds)."""

    row: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, price: Price, quantity: int, at: datetime) -> dict[str, Any]:
        item = {"price_id": price.id, "quantity": quantity, "started_at": at, "ended_at": None}
        self.items.append(item)
        return item

    def end(self, at: datetime, reason: str) -> None:
        self.row.update(status="canceled", canceled_at=at, ended_at=at, cancel_reason=reason)
        for item in self.items:
            item["ended_at"] = item["ended_at"] or at


def _plan(
    customer: Customer, start: datetime, *, trial_days: int = 0, coupon: Coupon | None = None
) -> _Planned:
    trial_end = start + timedelta(days=trial_days) if trial_days else None
    return _Planned({
        "customer_id": customer.id, "status": "active", "started_at": start, "trial_end": trial_end,
        "canceled_at": None, "ended_at": None, "cancel_reason": "",
        "coupon_id": coupon.id if coupon else None,
        "coupon_starts": (trial_end or start) if coupon else None,
        "created_at": start, "updated_at": start,
    })  # fmt: skip


def _insert_planned(session: Session, planned: list[_Planned]) -> None:
    if not planned:
        return
    ids = session.scalars(
        insert(Subscription).returning(Subscription.id, sort_by_parameter_order=True),
        [p.row for p in planned],
    ).all()
    items = [
        {**item, "subscription_id": sub_id}
        for p, sub_id in zip(planned, ids, strict=True)
        for item in p.items
    ]
    session.execute(insert(SubscriptionItem), items)


def _history(
    rng: random.Random,
    customer: Customer,
    org: Organisation,
    anchor: datetime,
    prices: dict[str, Price],
    coupons: dict[str, Coupon],
) -> list[_Planned]:
    """Today's plan, and a believable path to it."""
    c = customer.currency.lower()
    start = org.signed_up_at + timedelta(days=rng.randint(0, 10), hours=rng.randint(0, 23))
    if start >= anchor:
        return []
    path = [org.plan]
    if org.plan != "starter" and rng.random() < 0.3:
        path.insert(0, PLAN_ORDER[PLAN_ORDER.index(org.plan) - 1])  # upgraded over time
    trial = 14 if rng.random() < 0.45 else 0
    coupon = rng.choices([None, "LAUNCH20", "WELCOME50", "NONPROFIT25"], [80, 6, 10, 4])[0]
    if coupon == "LAUNCH20" and start > anchor - timedelta(days=3 * 365):
        coupon = None  # the launch offer was for the first customers only
    planned = []
    if rng.random() < 0.06 and start < anchor - timedelta(days=400):  # left once, came back
        gone = start + timedelta(days=rng.randint(90, 300))
        back = gone + timedelta(days=rng.randint(60, 200))
        if back < anchor - timedelta(days=30):
            first = _plan(customer, start)
            first.add(prices[f"{path[0]}-{c}"], _quantity(path[0], org, rng), start)
            first.end(gone, "moved to a competitor")
            planned.append(first)
            start, trial, coupon = back, 0, None
    sub = _plan(customer, start, trial_days=trial, coupon=coupons[coupon] if coupon else None)
    planned.append(sub)
    if sub.row["trial_end"] and sub.row["trial_end"] > anchor:
        sub.row["status"] = "trialing"
    plan_item = sub.add(prices[f"{path[0]}-{c}"], _quantity(path[0], org, rng), start)
    metered = set(_metered(path[0], c))
    for key in metered:
        sub.add(prices[key], 1, start)
    billable = sub.row["trial_end"] or start
    if len(path) == 2:
        at = billable + (anchor - billable) * rng.uniform(0.3, 0.8)
        plan_item["ended_at"] = at
        plan_item = sub.add(prices[f"{path[1]}-{c}"], _quantity(path[1], org, rng), at)
        for key in set(_metered(path[1], c)) - metered:
            sub.add(prices[key], 1, at)
    if path[-1] == "pro" and rng.random() < 0.5:  # seats move with the team
        at = max(plan_item["started_at"], billable) + timedelta(days=rng.randint(20, 200))
        seats = max(1, plan_item["quantity"] + rng.choice([-3, -1, 1, 2, 4, 6, 10]))
        if at < anchor and seats != plan_item["quantity"]:
            plan_item["ended_at"] = at
            sub.add(prices[f"pro-{c}"], seats, at)
    return planned


def _quantity(plan: str, org: Organisation, rng: random.Random) -> int:
    return _seats(rng, org.employees) if plan == "pro" else 1


def _metered(plan: str, c: str) -> list[str]:
    if plan == "pro":
        return [f"llm-input-{c}", f"llm-output-{c}", f"kb-storage-{c}"]
    if plan == "enterprise":
        return [f"llm-input-{c}", f"llm-output-{c}", f"api-calls-{c}"]
    return []


def _churned(
    rng: random.Random, customer: Customer, org: Organisation, anchor: datetime, starter: Price
) -> list[_Planned]:
    """Free organisations that once paid for Starter and left: the churn in the history."""
    start = org.signed_up_at + timedelta(days=rng.randint(0, 20))
    gone = start + timedelta(days=rng.randint(60, 540))
    if gone >= anchor - timedelta(days=5):
        return []
    sub = _plan(customer, start)
    sub.add(starter, 1, start)
    sub.end(gone, rng.choice(["too expensive", "project ended", "switched provider"]))
    return [sub]


def _usage_events(session: Session, rng: random.Random, anchor: datetime) -> int:
    """Monthly storage and API-call readings for the last three months, as the importer stores."""
    rows = []
    subs = session.execute(
        select(Subscription.customer_id, Price.metric)
        .join(SubscriptionItem, SubscriptionItem.subscription_id == Subscription.id)
        .join(Price, Price.id == SubscriptionItem.price_id)
        .where(
            Subscription.status.in_(["active", "past_due"]),
            Price.metric.in_(["kb_storage_gb", "api_calls"]),
            SubscriptionItem.ended_at.is_(None),
        )
    ).all()
    for months_back in (3, 2, 1):
        start, _ = month_of(add_months(anchor, -months_back))
        for customer_id, metric in subs:
            quantity = (
                rng.randint(3, 180)
                if metric == "kb_storage_gb"
                else int(rng.lognormvariate(9.5, 1.1))
            )
            rows.append({
                "event_key": f"demo-{metric}-{customer_id}-{start:%Y%m}",
                "customer_id": customer_id, "metric": metric, "quantity": quantity,
                "ts": start + timedelta(days=27, hours=rng.randint(0, 23)), "batch": "demo",
            })  # fmt: skip
    if rows:
        session.execute(insert(UsageEvent), rows)
    return len(rows)


def _heavy_llm_use(session: Session, rng: random.Random, anchor: datetime) -> int:
    """Starter customers running long-context RAG on the large models: LLM cost above revenue.
    Their traffic fills the last complete month, the one the margin report opens on."""
    month_begin, month_end = month_of(add_months(anchor, -1))
    price = session.scalar(
        select(LLMPrice).where(LLMPrice.model == "gpt-4o").order_by(LLMPrice.effective_from.desc())
    )
    orgs = session.scalars(
        select(Organisation.id)
        .where(
            Organisation.plan == "starter", Organisation.signed_up_at < anchor - timedelta(days=60)
        )
        .order_by(Organisation.id)
    ).all()
    if price is None or not orgs:
        return 0
    chosen = rng.sample(list(orgs), min(HEAVY_LLM_CUSTOMERS, len(orgs)))
    rows = []
    for org_id in chosen:
        per_day = rng.randint(10, 22)
        for day in range((month_end - month_begin).days):
            day_start = month_begin + timedelta(days=day)
            for _ in range(per_day):
                tokens_in, tokens_out = rng.randint(40_000, 110_000), rng.randint(800, 2500)
                cost = (
                    tokens_in * price.input_per_mtok_micros
                    + tokens_out * price.output_per_mtok_micros
                    + 500_000
                ) // 1_000_000
                rows.append(
                    {
                        **HEAVY_CALL,
                        "ts": day_start + timedelta(seconds=rng.randrange(86_400)),
                        "request_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                        "customer_id": org_id,
                        "latency_ms": 1400 * rng.uniform(0.7, 1.6),
                        "input_tokens": tokens_in,
                        "output_tokens": tokens_out,
                        "cost_micros": cost,
                        "price_id": price.id,
                    }
                )
    session.execute(insert(LLMUsage), rows)
    return len(chosen)


def _invoice_months(session: Session, rng: random.Random, anchor: datetime) -> str:
    """The last three months' runs; the older two finalised, mostly paid, a few late."""
    notes = []
    sequence = 0
    for months_back in (3, 2, 1):
        start, end = month_of(add_months(anchor, -months_back))
        run = InvoiceRun(
            period_start=start, actor=SEEDER.username, status="running", started_at=end
        )
        session.add(run)
        session.flush()
        drafts = build_drafts(
            load_facts(session, start, end), period_usage(session, start, end), start, end
        )
        created = write_batch(session, drafts, start, end, run.id)[0]
        run.status, run.created, run.finished_at = "done", created, end + timedelta(minutes=3)
        notes.append(f"{start:%Y-%m}: {created}")
        if months_back == 1:
            continue  # the last month stays in draft for finance to review and finalise
        invoices = session.scalars(
            select(Invoice).where(Invoice.period_start == start).order_by(Invoice.id)
        ).all()
        payments = []
        for invoice in invoices:
            issued = end + timedelta(days=1, hours=9)
            sequence += 1
            finalise(session, invoice, issued, number=f"INV-{issued.year}-{sequence:06d}")
            roll = rng.random()
            late = 0.10 if months_back == 2 else 0.03
            paid = issued + timedelta(days=rng.randint(1, 28))
            if invoice.status == "open" and roll > late and paid < anchor:
                method = "bank_transfer" if rng.random() < 0.3 else "stripe"
                invoice.status, invoice.amount_paid, invoice.paid_at = "paid", invoice.total, paid
                payments.append(
                    {
                        "invoice_id": invoice.id,
                        "amount": invoice.total,
                        "currency": invoice.currency,
                        "method": method,
                        "reference": f"demo-{invoice.id}",
                        "paid_at": paid,
                    }
                )
            elif invoice.status == "open" and roll < 0.004:
                invoice.status = "uncollectible"
        if payments:
            session.execute(insert(Payment), payments)
    return "invoice runs " + ", ".join(notes)


@seeder("billing", order=60)
def seed_billing(ctx: SeedContext) -> str:
    rng, session, anchor = ctx.rng, ctx.session, ctx.anchor
    _catalogue(session)
    ensure_customers(session)
    customers = {c.organisation_id: c for c in session.scalars(select(Customer))}
    prices = {p.lookup_key: p for p in session.scalars(select(Price))}
    coupons = {c.code: c for c in session.scalars(select(Coupon))}
    planned: list[_Planned] = []
    eu_vat = 0
    for org in session.scalars(select(Organisation).order_by(Organisation.id)):
        customer = customers[org.id]
        if org.plan != "free" or rng.random() < 0.5:
            customer.vat_id = _vat_id(rng, org.country) if rng.random() < 0.85 else None
            eu_vat += customer.vat_id is not None
        if org.plan == "free":
            if rng.random() < 0.25:
                planned += _churned(
                    rng, customer, org, anchor, prices[f"starter-{customer.currency.lower()}"]
                )
            continue
        planned += _history(rng, customer, org, anchor, prices, coupons)
    session.flush()
    _insert_planned(session, planned)
    past_due = session.scalars(
        select(Subscription).where(Subscription.status == "active").order_by(Subscription.id)
    ).all()
    for sub in rng.sample(list(past_due), min(9, len(past_due))):
        sub.status = "past_due"
    usage = _usage_events(session, rng, anchor)
    heavy = _heavy_llm_use(session, rng, anchor)
    session.flush()
    runs = _invoice_months(session, rng, anchor)
    subs = len(planned)
    return (
        f"{len(customers)} billing customers ({eu_vat} with VAT ids), {subs} subscriptions, "
        f"{usage} usage readings, {heavy} heavy LLM users; {runs}"
    )
