"""The monthly invoice run: right amounts and VAT per customer, exactly one invoice each however
often it runs or wherever it crashed, proration of plan changes, trials, cancellations and
coupons, and what may still change once an invoice is finalised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.auth.actor import Actor
from core.auth.roles import Role
from core.billing.invoice_status import finalise_invoice
from core.billing.invoices_read import invoice_detail, list_invoices
from core.billing.invoicing import run_invoices
from core.billing.models import Invoice, InvoiceLine, InvoiceRun, Subscription
from core.billing.subscriptions import cancel_subscription, change_plan, preview_change
from core.billing.taxes import REVERSE_CHARGE_NOTE
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import PermissionDenied, ValidationError
from core.llm.models import LLMUsage
from tests.billing_ledger import T0, build_ledger

FINANCE = Actor("fin", Role.FINANCE)
JAN, FEB = "2026-01", "2026-02"


def add_tokens(org_name_prefix: str, tokens: int, at: datetime, status: str = "ok") -> None:
    with unit_of_work() as session:
        from core.orgs.models import Organisation

        org_id = session.scalar(
            select(Organisation.id).where(Organisation.name.startswith(org_name_prefix))
        )
        session.add(
            LLMUsage(
                ts=at,
                request_id=f"r{at.timestamp()}{tokens}",
                actor="service:product-api",
                team="product",
                customer_id=org_id,
                alias="chat",
                deployment="openai-gpt-4o-mini",
                provider="openai",
                model="gpt-4o-mini",
                input_tokens=tokens,
                output_tokens=10,
                cost_micros=100,
                status=status,
            )
        )


def by_customer(period: str) -> dict[str, object]:
    return {row.customer: row for row in list_invoices(FINANCE, period=period)}


def count_invoices() -> int:
    with unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(Invoice)) or 0


def test_one_correct_invoice_per_customer_however_often_the_run_goes(db_url: str) -> None:
    build_ledger()
    add_tokens("Berlin", 3_000, T0 + timedelta(days=3))
    add_tokens("Berlin", 50_000, T0 + timedelta(days=4), status="timeout")  # failed: not billed
    add_tokens("Berlin", 9_999, T0 + timedelta(days=40))  # February's

    first = run_invoices(FINANCE, JAN)
    assert (first.created, first.updated, first.unchanged) == (4, 0, 0)
    rows = by_customer(JAN)
    dublin, berlin = rows["Dublin Data Ltd"], rows["Berlin Robotics GmbH"]
    lyon, austin = rows["Lyon Retail SAS"], rows["Austin Health Inc."]
    # domestic (seller in IE): Irish VAT 23 %
    assert (dublin.subtotal, dublin.tax, dublin.total) == (4900, 1127, 6027)
    # EU business with a VAT id: reverse charge; 4 seats + 2,000 tokens over the free 1,000
    assert (berlin.subtotal, berlin.tax, berlin.total) == (10_000 + 1_000, 0, 11_000)
    # EU consumer elsewhere: French VAT through the OSS
    assert (lyon.subtotal, lyon.tax) == (4900, 980)
    # outside the EU: no VAT, billed in USD
    assert (austin.currency, austin.tax, austin.total) == ("USD", 0, 4900)
    detail = invoice_detail(FINANCE, berlin.id)
    assert detail.tax_note == REVERSE_CHARGE_NOTE
    assert [line.quantity for line in detail.lines if line.kind == "usage"] == [3_000]

    second = run_invoices(FINANCE, JAN)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 4)
    assert count_invoices() == 4
    assert (
        second.total_by_currency
        == first.total_by_currency
        == {"EUR": 6027 + 11_000 + 5880, "USD": 4900}
    )


def test_a_run_that_crashed_half_way_completes_without_duplicates(sqlite_db: str) -> None:
    build_ledger()

    def crash(batch: int) -> None:
        if batch == 1:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        run_invoices(FINANCE, JAN, batch_size=2, after_batch=crash)
    assert count_invoices() == 2
    with unit_of_work() as session:
        assert session.scalar(select(InvoiceRun.status)) == "failed"

    again = run_invoices(FINANCE, JAN, batch_size=2)
    assert (again.created, again.unchanged) == (2, 2)
    with unit_of_work() as session:
        per_customer = session.execute(
            select(Invoice.customer_id, func.count()).group_by(Invoice.customer_id)
        ).all()
        assert sorted(n for _, n in per_customer) == [1, 1, 1, 1]
        lines = session.scalar(select(func.count()).select_from(InvoiceLine))
    assert lines == 4  # one plan line each; Berlin's usage is zero this month


def test_late_changes_rewrite_drafts_but_never_a_finalised_invoice(sqlite_db: str) -> None:
    build_ledger()
    run_invoices(FINANCE, JAN)
    rows = by_customer(JAN)
    number = finalise_invoice(FINANCE, rows["Dublin Data Ltd"].id)
    assert number == "INV-" + str(utcnow().year) + "-000001"

    add_tokens("Berlin", 5_000, T0 + timedelta(days=20))  # late usage for January
    with unit_of_work() as session:  # and Dublin's plan changes after its invoice went out
        sub = session.scalar(
            select(Subscription).where(
                Subscription.customer_id == rows["Dublin Data Ltd"].customer_id
            )
        )
        sub.trial_end = T0 + timedelta(days=10)
    report = run_invoices(FINANCE, JAN)
    assert (report.created, report.updated, report.unchanged, report.finalised_skipped) == (
        0,
        1,
        2,
        1,
    )
    after = by_customer(JAN)
    assert after["Berlin Robotics GmbH"].subtotal == 10_000 + 2_000
    assert after["Dublin Data Ltd"].total == rows["Dublin Data Ltd"].total  # finalised: as issued
    assert after["Dublin Data Ltd"].status == "open"


def test_plan_change_trial_and_cancellation_are_prorated_to_the_second(sqlite_db: str) -> None:
    ledger = build_ledger()
    dublin, lyon, austin = (
        ledger.customers["Dublin Data Ltd"],
        ledger.customers["Lyon Retail SAS"],
        ledger.customers["Austin Health Inc."],
    )
    with unit_of_work() as session:
        subs = {s.customer_id: s.id for s in session.scalars(select(Subscription))}
        session.get(Subscription, subs[lyon]).trial_end = datetime(2026, 1, 10, tzinfo=UTC)
        berlin = ledger.customers["Berlin Robotics GmbH"]
        session.get(Subscription, subs[berlin]).trial_end = datetime(2026, 2, 15, tzinfo=UTC)
    add_tokens("Berlin", 5_000, T0 + timedelta(days=5))  # used during the trial: not billed
    mid = datetime(2026, 1, 16, tzinfo=UTC)
    preview = preview_change(FINANCE, subs[dublin], "pro-eur", 2, at=mid)
    # 16 of January's 31 days remain: credit the unused Starter, charge 2 Pro seats
    assert (preview.credit, preview.charge) == (-round(4900 * 16 / 31), 2581)
    change_plan(FINANCE, subs[dublin], "pro-eur", 2, at=mid)
    cancel_subscription(
        FINANCE, subs[austin], "project ended", at=datetime(2026, 1, 21, tzinfo=UTC)
    )

    run_invoices(FINANCE, JAN)
    rows = by_customer(JAN)
    lines = [
        (ln.description.split(",")[0], ln.amount)
        for ln in invoice_detail(FINANCE, rows["Dublin Data Ltd"].id).lines
    ]
    assert lines == [("Starter plan · Monthly", 2371), ("Pro plan · Per seat x 2 seats", 2581)]
    assert rows["Lyon Retail SAS"].subtotal == 3477  # billable after the trial: 22 of 31 days
    assert rows["Austin Health Inc."].subtotal == 3161  # until the 21st: 20 of 31 days
    assert "Berlin Robotics GmbH" not in rows  # in trial all month, usage included

    run_invoices(FINANCE, FEB)
    february = by_customer(FEB)
    assert "Austin Health Inc." not in february  # cancelled: nothing more to bill
    assert february["Dublin Data Ltd"].subtotal == 5000


def test_a_once_coupon_discounts_only_the_first_month(sqlite_db: str) -> None:
    build_ledger(subscribe=False)
    from core.billing.subscriptions import ItemSpec, create_subscription

    ledger_customer = list_customers_by_name()["Dublin Data Ltd"]
    create_subscription(
        FINANCE, ledger_customer, [ItemSpec("starter-eur")], start=T0, coupon_code="half"
    )
    run_invoices(FINANCE, JAN)
    run_invoices(FINANCE, FEB)
    jan, feb = by_customer(JAN)["Dublin Data Ltd"], by_customer(FEB)["Dublin Data Ltd"]
    assert (jan.subtotal, jan.discount, jan.tax, jan.total) == (4900, 2450, 564, 3014)
    assert (feb.discount, feb.total) == (0, 6027)
    assert any(
        ln.kind == "discount" and ln.amount == -2450 for ln in invoice_detail(FINANCE, jan.id).lines
    )


def list_customers_by_name() -> dict[str, int]:
    from core.billing.models import Customer

    with unit_of_work() as session:
        return {c.name: c.id for c in session.scalars(select(Customer))}


def test_runs_are_refused_for_unfinished_periods_bad_input_and_other_roles(sqlite_db: str) -> None:
    build_ledger()
    with pytest.raises(ValidationError, match="has not ended"):
        run_invoices(FINANCE, "2026-03", now=datetime(2026, 3, 15, tzinfo=UTC))
    with pytest.raises(ValidationError, match="YYYY-MM"):
        run_invoices(FINANCE, "March")
    with pytest.raises(PermissionDenied):
        run_invoices(Actor("ml", Role.ML_ENGINEER), JAN)
    assert count_invoices() == 0
