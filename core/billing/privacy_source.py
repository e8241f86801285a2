"""Billing as a data source for data-subject requests.

Billing customers are organisations; their end users (the data subjects) appear nowhere in the
ledger: metered usage reaches the usage lake and the invoices as per-organisation totals only.
The one way a person is in billing is as the billing contact of a customer, e.g. a sole trader
billed at their own e-mail address. Such a customer's profile and invoices are handed over on
access; on erasure they are retained as issued, because invoices must be kept unchanged for the
statutory period (VAT Directive 2006/112/EC Art. 244-247 and national law, commonly 6-10 years).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.billing.models import Customer, Invoice
from core.privacy.models import DataSubject
from core.privacy.sources import ErasureOutcome, register_source, row_dict

CUSTOMER_COLUMNS = ("id", "name", "email", "country", "currency", "vat_id", "created_at")
INVOICE_COLUMNS = (
    "number",
    "status",
    "currency",
    "period_start",
    "period_end",
    "subtotal",
    "discount",
    "tax",
    "total",
    "amount_paid",
    "issued_at",
)
REASON = (
    "Invoices billed to the subject are kept as issued for the statutory retention period "
    "(VAT Directive Art. 244-247 and national accounting law); they are used for nothing else."
)


def _customers(session: Session, subject: DataSubject) -> list[Customer]:
    return list(
        session.scalars(
            select(Customer).where(func.lower(Customer.email) == subject.email.strip().lower())
        )
    )


@register_source(order=60)
class BillingSource:
    name = "billing"
    label = "Billing contact and invoices"
    description = "Billing customers whose contact e-mail is the subject's, and their invoices."

    def collect(self, session: Session, subject: DataSubject) -> list[dict[str, Any]]:
        rows = []
        for customer in _customers(session, subject):
            invoices = session.scalars(
                select(Invoice)
                .where(Invoice.customer_id == customer.id, Invoice.status != "draft")
                .order_by(Invoice.period_start)
            )
            rows.append(
                {
                    **row_dict(customer, CUSTOMER_COLUMNS),
                    "invoices": [row_dict(i, INVOICE_COLUMNS) for i in invoices],
                }
            )
        return rows

    def erase(self, session: Session, subject: DataSubject) -> ErasureOutcome:
        customers = _customers(session, subject)
        if not customers:
            return ErasureOutcome(
                "none", 0, "The subject is not the billing contact of any customer."
            )
        return ErasureOutcome("retained", len(customers), REASON)
