"""After the run: finalising, payments, voiding, credit notes, the PDF, customer details and the
usage CSV import, each with the refusals that keep the ledger consistent."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from core.audit.service import AuditFilter, search
from core.auth.actor import Actor
from core.auth.roles import Role
from core.billing import usage
from core.billing.credit_notes import issue_credit_note
from core.billing.customers import search_customers, update_customer
from core.billing.invoice_status import (
    finalise_invoice,
    mark_uncollectible,
    record_payment,
    void_invoice,
)
from core.billing.invoices_read import invoice_detail, list_invoices
from core.billing.invoicing import run_invoices
from core.billing.models import UsageEvent
from core.billing.pdf import invoice_pdf
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from tests.billing_ledger import build_ledger

FINANCE = Actor("fin", Role.FINANCE)


@pytest.fixture
def invoices(sqlite_db: str) -> dict[str, int]:
    build_ledger()
    run_invoices(FINANCE, "2026-01")
    return {row.customer: row.id for row in list_invoices(FINANCE, period="2026-01")}


def test_payments_and_credit_notes_settle_an_invoice_exactly(invoices: dict[str, int]) -> None:
    dublin = invoices["Dublin Data Ltd"]
    with pytest.raises(Conflict, match="draft"):
        record_payment(FINANCE, dublin, 100)
    finalise_invoice(FINANCE, dublin)
    with pytest.raises(ValidationError, match="more than the amount due"):
        record_payment(FINANCE, dublin, 6028)
    record_payment(FINANCE, dublin, 1000, reference="bank 42")
    # a credit note carries VAT in the invoice's proportion, allocated exactly
    credit = issue_credit_note(FINANCE, dublin, 6027 - 1000, "order_change", "goodwill")
    assert (credit.amount, credit.tax, credit.invoice_status) == (5027, 940, "paid")
    with pytest.raises(ValidationError, match="At most 1000"):
        issue_credit_note(FINANCE, dublin, 1001, "duplicate")
    detail = invoice_detail(FINANCE, dublin)
    assert [p.amount for p in detail.payments] == [1000]
    assert [c.number for c in detail.credit_notes] == [credit.number]
    assert detail.invoice.amount_due == 0
    with pytest.raises(Conflict, match="payments"):
        void_invoice(FINANCE, dublin, "sent in error")


def test_void_and_uncollectible_follow_the_status_rules(invoices: dict[str, int]) -> None:
    lyon, austin = invoices["Lyon Retail SAS"], invoices["Austin Health Inc."]
    with pytest.raises(Conflict, match="draft"):
        void_invoice(FINANCE, lyon, "sent in error")
    finalise_invoice(FINANCE, lyon)
    with pytest.raises(ValidationError, match="Say why"):
        void_invoice(FINANCE, lyon, "x")
    void_invoice(FINANCE, lyon, "duplicate of a manual invoice")
    with pytest.raises(Conflict, match="void"):
        issue_credit_note(FINANCE, lyon, 100, "duplicate")
    finalise_invoice(FINANCE, austin)
    mark_uncollectible(FINANCE, austin)
    record_payment(FINANCE, austin, 4900, method="bank_transfer")  # paid after all
    assert invoice_detail(FINANCE, austin).invoice.status == "paid"
    with pytest.raises(PermissionDenied):
        void_invoice(Actor("c", Role.COMPLIANCE_OFFICER), austin, "not allowed")
    actions = [e.action for e in search(FINANCE_ADMIN, AuditFilter())]
    assert {
        "billing.invoice.void",
        "billing.invoice.uncollectible",
        "billing.payment.record",
    } <= set(actions)


FINANCE_ADMIN = Actor("admin", Role.ADMIN)


def test_the_pdf_shows_the_lines_totals_and_reverse_charge(invoices: dict[str, int]) -> None:
    berlin = invoices["Berlin Robotics GmbH"]
    finalise_invoice(FINANCE, berlin)
    text = "\n".join(
        page.extract_text() for page in PdfReader(io.BytesIO(invoice_pdf(FINANCE, berlin))).pages
    )
    assert "Berlin Robotics GmbH" in text and "DE136695976" in text
    assert "Per seat x 4 seats" in text
    assert "EUR 100.00" in text  # the total: 4 seats at EUR 25
    assert "Reverse charge" in text


def test_customer_vat_ids_are_checked_and_searchable(invoices: dict[str, int]) -> None:
    lyon = next(r for r in search_customers(FINANCE, "lyon"))
    with pytest.raises(ValidationError, match="not a valid EU VAT number"):
        update_customer(FINANCE, lyon.id, vat_id="FR00000000000")
    with pytest.raises(ValidationError, match="from DE"):
        update_customer(FINANCE, lyon.id, vat_id="DE136695976")
    update_customer(FINANCE, lyon.id, vat_id="FR 40 303 265 045")
    found = search_customers(FINANCE, "FR40303265045")
    assert [r.name for r in found] == ["Lyon Retail SAS"]
    assert found[0].tax_note.startswith("Reverse charge")
    with pytest.raises(ValidationError, match="currency"):
        update_customer(FINANCE, lyon.id, country="US")  # invoiced in EUR already


CSV_HEADER = "event_id,customer_id,metric,quantity,timestamp\n"


def test_usage_import_is_all_or_nothing_and_idempotent(invoices: dict[str, int]) -> None:
    customer = invoice_detail(FINANCE, invoices["Berlin Robotics GmbH"]).customer.id
    good = CSV_HEADER + (
        f"a1,{customer},kb_storage_gb,25,2026-01-20T10:00:00Z\n"
        f"a2,{customer},api_calls,1200,2026-01-21T10:00:00+01:00\n"
    )
    report = usage.import_usage_csv(FINANCE, good.encode())
    assert (report.rows, report.added, report.already_imported) == (2, 2, 0)
    again = usage.import_usage_csv(FINANCE, good.encode())
    assert (again.added, again.already_imported) == (0, 2)

    future = (utcnow() + timedelta(days=2)).isoformat()
    bad = CSV_HEADER + (
        f"b1,{customer},kb_storage_gb,5,2026-01-20T10:00:00Z\n"
        f"b2,999999,kb_storage_gb,5,2026-01-20T10:00:00Z\n"
        f"b3,{customer},llm_input_tokens,5,2026-01-20T10:00:00Z\n"
        f"b4,{customer},api_calls,-1,2026-01-20T10:00:00Z\n"
        f"b5,{customer},api_calls,1,{future}\n"
        f"b1,{customer},api_calls,1,2026-01-20T10:00:00Z\n"
    )
    with pytest.raises(ValidationError) as refused:
        usage.import_usage_csv(FINANCE, bad.encode())
    message = refused.value.message
    assert "Nothing was imported" in message
    for fragment in (
        "line 3: no billing customer",
        "line 4: metric",
        "line 5: quantity",
        "line 6: timestamp is in the future",
    ):
        assert fragment in message
    with pytest.raises(ValidationError, match="lacks the column"):
        usage.import_usage_csv(FINANCE, b"id,metric\n1,api_calls\n")
    with pytest.raises(ValidationError, match="not UTF-8"):
        usage.import_usage_csv(FINANCE, CSV_HEADER.encode() + b"\xff\xfe,1\n")
    with pytest.raises(ValidationError, match="line 2: no time zone"):
        usage.import_usage_csv(
            FINANCE, (CSV_HEADER + f"c1,{customer},api_calls,1,2026-01-20 10:00\n").encode()
        )
    with unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(UsageEvent)) == 2

    usage_totals = usage.customer_usage(FINANCE, customer, *_january())
    assert usage_totals == {"kb_storage_gb": 25, "api_calls": 1200}


def _january() -> tuple[datetime, datetime]:
    return datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


def test_an_oversize_usage_file_is_refused_before_parsing(
    sqlite_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usage, "MAX_IMPORT_BYTES", 100)
    with pytest.raises(ValidationError, match="limit"):
        usage.import_usage_csv(FINANCE, b"x" * 101)


def test_a_sole_trader_billed_at_their_own_address_gets_their_invoices_not_erased(
    invoices: dict[str, int],
) -> None:
    from core.billing.privacy_source import BillingSource
    from core.privacy.models import DataSubject

    finalise_invoice(FINANCE, invoices["Dublin Data Ltd"])
    with unit_of_work() as session:
        subject = DataSubject(
            external_ref="p-1", email="Billing@Dublin.example", full_name="Dara Byrne", country="IE"
        )
        stranger = DataSubject(
            external_ref="p-2", email="dara@elsewhere.example", full_name="Dara B", country="IE"
        )
        session.add_all([subject, stranger])
        session.flush()
        exported = BillingSource().collect(session, subject)
        assert [row["name"] for row in exported] == ["Dublin Data Ltd"]
        assert [i["total"] for i in exported[0]["invoices"]] == [6027]
        assert BillingSource().erase(session, subject).action == "retained"
        assert BillingSource().erase(session, stranger).action == "none"
        assert BillingSource().collect(session, stranger) == []


def test_a_customers_subscriptions_list_their_history_and_guard_ownership(
    invoices: dict[str, int],
) -> None:
    from core.billing.catalog import quote
    from core.billing.subscriptions import (
        cancel_subscription,
        change_plan,
        customer_subscriptions,
        preview_change,
    )

    dublin = invoice_detail(FINANCE, invoices["Dublin Data Ltd"]).customer.id
    lyon = invoice_detail(FINANCE, invoices["Lyon Retail SAS"]).customer.id
    (sub,) = customer_subscriptions(FINANCE, dublin)
    with pytest.raises(NotFound):  # the page passes the customer: another's id is refused
        change_plan(FINANCE, sub.id, "pro-eur", 3, customer_id=lyon)
    with pytest.raises(NotFound):
        preview_change(FINANCE, sub.id, "pro-eur", 3, customer_id=lyon)
    change_plan(
        FINANCE, sub.id, "pro-eur", 3, at=datetime(2026, 2, 10, tzinfo=UTC), customer_id=dublin
    )
    with pytest.raises(NotFound):
        cancel_subscription(FINANCE, sub.id, "closing down", customer_id=lyon)
    (sub,) = customer_subscriptions(FINANCE, dublin)
    assert sub.live and [(i.price_key, i.quantity, i.ended_at is None) for i in sub.items] == [
        ("starter-eur", 1, False),
        ("pro-eur", 3, True),
    ]
    assert quote(FINANCE, "llm-input-eur", 3_000) == 1_000  # 1,000 free, then 0.5 each
