"""Revenue metrics over a small hand-built ledger (Jan-Jun 2025), with expectations computed by
hand: MRR movements, churn rates, cohorts, the header KPIs, receivables ageing and the margin
after LLM cost. The full ledger runs on SQLite and PostgreSQL; the rest on SQLite only."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.auth.roles import Role
from core.billing import catalog, fx
from core.billing.catalog import PriceSpec
from core.billing.margin import margin
from core.billing.metrics import (
    COHORT_COLUMNS,
    HISTORY_COLUMNS,
    cohort_matrix,
    cohort_retention,
    kpis,
    mrr_by_customer_at,
    mrr_history,
)
from core.billing.models import CreditNote, Customer, Invoice, Subscription, SubscriptionItem
from core.billing.receivables import ar_ageing
from core.db import unit_of_work
from core.errors import PermissionDenied, ValidationError
from core.llm.models import LLMUsage
from core.orgs.models import Organisation

FIN = Actor("fin", Role.FINANCE)


def at(y: int, m: int, d: int = 1, h: int = 0) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


def customer(session: Session, name: str, currency: str = "EUR") -> Customer:
    org = Organisation(
        name=name,
        country="IE",
        plan="x",
        industry="software",
        employees=10,
        domain=f"{name}.example",
        signed_up_at=at(2024, 12, 1),
    )
    session.add(org)
    session.flush()
    row = Customer(
        organisation_id=org.id,
        name=name,
        email=f"ap@{name}.example",
        country="IE",
        currency=currency,
    )
    session.add(row)
    session.flush()
    return row


def subscribe(
    session: Session,
    cust: Customer,
    items: list[tuple[int, int, datetime, datetime | None]],
    **fields: Any,
) -> Subscription:
    fields.setdefault("status", "active")
    fields.setdefault("started_at", items[0][2])
    sub = Subscription(customer_id=cust.id, **fields)
    session.add(sub)
    session.flush()
    for price_id, quantity, start, end in items:
        session.add(
            SubscriptionItem(
                subscription_id=sub.id,
                price_id=price_id,
                quantity=quantity,
                started_at=start,
                ended_at=end,
            )
        )
    return sub


def catalogue(session: Session) -> dict[str, int]:
    for key, name in [("basic", "Basic"), ("pro", "Pro"), ("seats", "Seats"), ("annual", "Annual")]:
        catalog.add_product(session, FIN, key, name)
    specs = [
        PriceSpec("basic", "basic-eur", "EUR", "flat", "10000"),
        PriceSpec("pro", "pro-eur", "EUR", "flat", "30000"),
        PriceSpec("seats", "seat-eur", "EUR", "per_seat", "2000"),
        PriceSpec("annual", "annual-eur", "EUR", "flat", "120000"),
        PriceSpec("pro", "tokens-eur", "EUR", "per_unit", "0.001", metric="llm_input_tokens"),
        PriceSpec("basic", "basic-usd", "USD", "flat", "5000"),
    ]
    prices = {s.lookup_key: catalog.add_price(session, FIN, s) for s in specs}
    prices["annual-eur"].interval = "year"  # 1,200 a year counts 100 a month
    return {key: price.id for key, price in prices.items()}


def ledger(session: Session) -> dict[str, Customer]:
    """A: basic from 10 Jan, pro from 15 Mar (expansion), plus metered tokens (not MRR).
    B: 5 seats from 1 Jan, 3 from 1 Apr 00:00 (contraction in April).
    C: basic 5 Feb - 20 Apr (churn), back on 3 Jun (reactivation).
    D: pro from 1 Feb with a trial to 10 Mar (new in March).
    E: annual from 15 Jan with a 20 % forever coupon: 10,000 - 2,000.
    F: billed in USD, basic from 1 Feb: absent from EUR figures, converted in the overall ones."""
    p = catalogue(session)
    c = {n: customer(session, n, "USD" if n == "F" else "EUR") for n in "ABCDEF"}
    subscribe(
        session,
        c["A"],
        [
            (p["basic-eur"], 1, at(2025, 1, 10), at(2025, 3, 15)),
            (p["pro-eur"], 1, at(2025, 3, 15), None),
            (p["tokens-eur"], 1, at(2025, 1, 10), None),
        ],
    )
    subscribe(
        session,
        c["B"],
        [
            (p["seat-eur"], 5, at(2025, 1, 1), at(2025, 4, 1)),
            (p["seat-eur"], 3, at(2025, 4, 1), None),
        ],
    )
    subscribe(
        session,
        c["C"],
        [(p["basic-eur"], 1, at(2025, 2, 5), None)],
        status="canceled",
        canceled_at=at(2025, 4, 1),
        ended_at=at(2025, 4, 20),
    )
    subscribe(session, c["C"], [(p["basic-eur"], 1, at(2025, 6, 3), None)])
    subscribe(session, c["D"], [(p["pro-eur"], 1, at(2025, 2, 1), None)], trial_end=at(2025, 3, 10))
    coupon = catalog.add_coupon(
        session, FIN, "SAVE20", "20 % forever", percent_off_bp=2_000, duration="forever"
    )
    subscribe(
        session,
        c["E"],
        [(p["annual-eur"], 1, at(2025, 1, 15), None)],
        coupon_id=coupon.id,
        coupon_starts=at(2025, 1, 15),
    )
    subscribe(session, c["F"], [(p["basic-usd"], 1, at(2025, 2, 1), None)])
    return c


def invoice(session: Session, cust: Customer, month: int, status: str, **fields: Any) -> Invoice:
    """An invoice for `month` of 2025; amounts default to 0, issued at the period's end."""
    end = at(2025, month + 1)
    fields.setdefault("issued_at", end)
    fields.setdefault("total", fields.get("subtotal", 0))
    row = Invoice(
        customer_id=cust.id,
        status=status,
        currency=cust.currency,
        period_start=at(2025, month),
        period_end=end,
        **fields,
    )
    session.add(row)
    session.flush()
    return row


def receivables_and_usage(session: Session, c: dict[str, Customer]) -> None:
    """Invoices (ageing is read on 15 Jul 2025, margin for June) and LLM usage."""
    # fmt: off
    invoice(session, c["A"], 4, "open", subtotal=5_000, due_at=at(2025, 5, 1))  # 75 days
    invoice(session, c["A"], 6, "open", subtotal=30_000, tax=6_300, total=36_300,
            due_at=at(2025, 7, 31))
    invoice(session, c["A"], 7, "open", subtotal=9, issued_at=at(2025, 7, 20))  # after as_of
    invoice(session, c["B"], 5, "open", total=12_100, amount_paid=2_100, due_at=at(2025, 6, 30))
    june = invoice(session, c["B"], 6, "open", subtotal=6_000, tax=1_260, total=7_260,
                   amount_credited=1_210, due_at=at(2025, 7, 31))
    session.add(CreditNote(number="CN-1", invoice_id=june.id, amount=1_210, tax=210,
                           reason="service", created_by="fin"))
    invoice(session, c["C"], 3, "uncollectible", total=10_000, issued_at=at(2025, 4, 1),
            due_at=at(2025, 4, 14))  # 92 days
    invoice(session, c["C"], 6, "draft", subtotal=10_000, issued_at=None)
    invoice(session, c["D"], 4, "open", total=30_000, amount_credited=5_000, due_at=at(2025, 5, 31))
    invoice(session, c["D"], 6, "void", subtotal=30_000)
    invoice(session, c["E"], 6, "paid", subtotal=10_000, discount=2_000, tax=1_680, total=9_680,
            amount_paid=9_680)
    invoice(session, c["F"], 5, "open", total=5_000, issued_at=at(2025, 5, 2),
            due_at=at(2025, 6, 1))
    # fmt: on
    stranger = customer(session, "no-billing")  # an organisation whose usage nobody bills
    session.delete(session.get(Customer, stranger.id))
    usage = [
        (c["A"], at(2025, 6, 1), 30_000_000),
        (c["A"], at(2025, 6, 30), 20_000_000),
        (c["A"], at(2025, 5, 31, 23), 99_000_000),  # before the range
        (c["A"], at(2025, 7, 1), 99_000_000),  # the range is half-open
        (c["B"], at(2025, 6, 10), 200_000_000),
        (c["D"], at(2025, 6, 10), 1_000_000),
        (stranger, at(2025, 6, 10), 99_000_000),
        (None, at(2025, 6, 10), 99_000_000),
    ]
    for n, (cust, ts, micros) in enumerate(usage):
        org = cust.organisation_id if cust else None
        session.add(
            LLMUsage(ts=ts, request_id=f"r{n}", actor="svc", team="t", alias="a", deployment="d",
                     provider="p", model="m", status="ok", customer_id=org, cost_micros=micros)
        )  # fmt: skip


def test_history_movements_churn_cohorts_ageing_and_margin(db_url: str) -> None:
    with unit_of_work() as session:
        c = ledger(session)
        receivables_and_usage(session, c)
        ids = {n: row.id for n, row in c.items()}
    check_history(ids)
    check_ageing(ids)
    check_margin(ids)


def check_history(ids: dict[str, int]) -> None:
    frame = mrr_history(FIN, date(2024, 12, 1), date(2025, 6, 30), currency="EUR")
    assert list(frame.columns) == HISTORY_COLUMNS and frame.attrs["currency"] == "EUR"
    assert list(frame["month"]) == [date(2024, 12, 1)] + [date(2025, m, 1) for m in range(1, 7)]
    assert list(frame["mrr"]) == [0, 28_000, 38_000, 88_000, 74_000, 74_000, 84_000]
    assert list(frame["customers"]) == [0, 3, 4, 5, 4, 4, 5]  # C churned in Apr, back in Jun
    assert list(frame["new"]) == [0, 28_000, 10_000, 30_000, 0, 0, 0]
    assert list(frame["expansion"]) == [0, 0, 0, 20_000, 0, 0, 0]
    assert list(frame["contraction"]) == [0, 0, 0, 0, -4_000, 0, 0]
    assert list(frame["churn"]) == [0, 0, 0, 0, -10_000, 0, 0]
    assert list(frame["reactivation"]) == [0, 0, 0, 0, 0, 0, 10_000]
    assert list(frame["net_new"]) == [0, 28_000, 10_000, 50_000, -14_000, 0, 10_000]
    assert frame["arr"].iloc[3] == 12 * 88_000 and frame["arpa"].iloc[3] == 88_000 // 5
    assert math.isnan(frame["logo_churn_rate"].iloc[0])
    april = frame.iloc[4]
    assert april["logo_churn_rate"] == 0.2  # 1 of the 5 paying on 1 April
    assert april["revenue_churn_rate"] == round(14_000 / 88_000, 4)
    assert str(frame["mrr"].dtype) == "int64"

    # per customer at an instant: D's trial ended on 10 Mar, A's upgrade is on 15 Mar
    with unit_of_work(read_only=True) as session:
        assert mrr_by_customer_at(session, at(2025, 3, 12), "EUR") == {
            ids["A"]: 10_000,
            ids["B"]: 10_000,
            ids["C"]: 10_000,
            ids["D"]: 30_000,
            ids["E"]: 8_000,
        }
        overall = mrr_by_customer_at(session, at(2025, 3, 12))
    assert overall[ids["F"]] == fx.convert(5_000, "USD", "EUR")

    cohorts = cohort_retention(FIN, date(2025, 1, 1), date(2025, 6, 1), currency="EUR")
    assert list(cohorts.columns) == COHORT_COLUMNS
    feb = cohorts[cohorts["cohort_label"] == "2025-02"].set_index("months_since")
    assert list(feb["customers"]) == [1, 1, 0, 0, 1]  # C alone: paying, churned, back
    assert list(feb["logo_retention"]) == [1.0, 1.0, 0.0, 0.0, 1.0]
    jan = cohorts[cohorts["cohort_label"] == "2025-01"].set_index("months_since")
    assert jan["cohort_size"].iloc[0] == 3 and jan["cohort_mrr"].iloc[0] == 28_000
    # A's expansion and B's contraction: (30,000 + 6,000 + 8,000) / 28,000
    assert jan.loc[5, "revenue_retention"] == round(44_000 / 28_000, 4)
    grid = cohort_matrix(cohorts)
    assert list(grid.index) == ["2025-01", "2025-02", "2025-03"] and grid.loc["2025-03", 3] == 1.0

    header = kpis(FIN, at(2025, 6, 15), currency="EUR")
    assert (header.mrr, header.customers, header.arpa) == (84_000, 5, 16_800)
    assert header.arr == 12 * 84_000 and header.net_new_this_month == 10_000
    assert header.net_new_last_month == 0 and header.logo_churn_last_month == 0.0
    assert header.ar_overdue == 5_000 + 10_000 + 25_000  # B's May invoice is due 30 Jun

    everything = mrr_history(FIN, date(2025, 2, 1), date(2025, 2, 1))
    assert everything.attrs["currency"] == "EUR"  # the reporting currency
    assert everything["new"].iloc[0] == 10_000 + fx.convert(5_000, "USD", "EUR")


def check_ageing(ids: dict[str, int]) -> None:
    ageing = ar_ageing(FIN, date(2025, 7, 15), currency="EUR")  # the end of that day
    assert ageing.totals == {
        "current": 36_300 + 6_050,
        "days_1_30": 10_000,
        "days_31_60": 25_000,
        "days_61_90": 5_000,
        "days_90_plus": 10_000,
        "overdue": 50_000,
        "total": 92_350,
    }
    table = ageing.customers
    assert list(table["customer_id"]) == [ids[n] for n in "DBCA"]  # most overdue first
    a = table.set_index("customer_id").loc[ids["A"]]
    assert (a["invoices"], a["current"], a["days_61_90"], a["total"]) == (2, 36_300, 5_000, 41_300)
    assert set(ageing.invoices["status"]) == {"open", "uncollectible"}
    overall = ar_ageing(FIN, at(2025, 7, 15))
    assert overall.totals["days_31_60"] == 25_000 + fx.convert(5_000, "USD", "EUR")


def check_margin(ids: dict[str, int]) -> None:
    result = margin(FIN, date(2025, 6, 1), date(2025, 7, 1), currency="EUR")
    table = result.customers.set_index("customer_id")
    cost = {n: fx.micros_usd_to_minor(m, "EUR") for n, m in
            {"A": 50_000_000, "B": 200_000_000, "D": 1_000_000}.items()}  # fmt: skip
    revenue = {"A": 30_000, "B": 6_000 - 1_000, "C": 10_000, "D": 0, "E": 8_000}
    assert sorted(table.index) == sorted(ids[n] for n in revenue)  # F bills in USD
    for name, income in revenue.items():
        row = table.loc[ids[name]]
        assert (row["revenue"], row["llm_cost"]) == (income, cost.get(name, 0))
        assert row["gross_margin"] == income - cost.get(name, 0)
        assert row["losing_money"] == (name in "BD")
    assert list(result.customers["customer_id"]) == [ids[n] for n in "BDECA"]  # worst first
    assert table.loc[ids["B"], "margin_pct"] == round(100 * (5_000 - cost["B"]) / 5_000, 1)
    assert math.isnan(table.loc[ids["D"], "margin_pct"])
    assert dict(zip(table.index, table["plan"], strict=True)) == {
        ids["A"]: "Pro",
        ids["B"]: "Seats",
        ids["C"]: "Basic",
        ids["D"]: "Pro",
        ids["E"]: "Annual",
    }
    pro = result.plans.set_index("plan").loc["Pro"]
    assert (pro["customers"], pro["customers_losing_money"]) == (2, 1)
    assert pro["llm_cost"] == cost["A"] + cost["D"] and not pro["losing_money"]
    assert result.plans["plan"].iloc[0] == "Seats"


def test_current_status_counts_only_from_now_on(sqlite_db: str) -> None:
    with unit_of_work() as session:
        prices = catalogue(session)
        late, stuck = customer(session, "late"), customer(session, "stuck")
        item = [(prices["basic-eur"], 1, at(2025, 1, 1), None)]
        subscribe(session, late, item, status="past_due")
        subscribe(session, stuck, item, status="incomplete")
        # the trial ended on 1 Feb but the job that activates it has not run yet
        lagging = customer(session, "lagging")
        subscribe(session, lagging, item, status="trialing", trial_end=at(2025, 2, 1))
    with unit_of_work(read_only=True) as session:
        then = mrr_by_customer_at(session, at(2025, 2, 1), now=at(2025, 3, 1))
        later = mrr_by_customer_at(session, at(2025, 4, 1), now=at(2025, 3, 1))
    assert then == {late.id: 10_000, stuck.id: 10_000, lagging.id: 10_000}
    assert later == {late.id: 10_000, lagging.id: 10_000}


def test_metrics_need_billing_read_and_a_known_currency(sqlite_db: str) -> None:
    engineer = Actor("eng", Role.ML_ENGINEER)
    calls = [
        lambda: mrr_history(engineer, date(2025, 1, 1), date(2025, 2, 1)),
        lambda: cohort_retention(engineer, date(2025, 1, 1), date(2025, 2, 1)),
        lambda: kpis(engineer),
        lambda: ar_ageing(engineer),
        lambda: margin(engineer, at(2025, 1, 1), at(2025, 2, 1)),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    with pytest.raises(ValidationError):
        mrr_history(FIN, date(2025, 1, 1), date(2025, 2, 1), currency="XYZ")
    empty = mrr_history(FIN, date(2025, 1, 1), date(2025, 2, 1))
    assert list(empty["mrr"]) == [0, 0] and list(empty.columns) == HISTORY_COLUMNS
    assert (
        ar_ageing(FIN).totals["total"] == 0
        and margin(FIN, at(2025, 1, 1), at(2025, 2, 1)).customers.empty
    )
    assert cohort_retention(FIN, date(2025, 1, 1), date(2025, 2, 1)).empty
