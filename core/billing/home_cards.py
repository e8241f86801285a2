"""Home-page numbers for finance: MRR now, drafts waiting to be finalised, and what is overdue.

Cheap on purpose: one read of the subscription ledger for MRR (the same engine as the Revenue
page, so the two always agree), one grouped count of drafts, and the receivables ageing query.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.auth.roles import Role
from core.billing.formatting import compact_money
from core.billing.metrics import mrr_by_customer_at
from core.billing.metrics_frames import check_currency
from core.billing.models import Invoice
from core.billing.periods import label
from core.billing.receivables import ageing
from core.clock import utcnow
from core.platform.home import Metric, home_card


@home_card(Role.FINANCE, Role.ADMIN, title="Billing")
def billing(session: Session, actor: Actor) -> list[Metric]:
    now = utcnow()
    currency = check_currency(None)
    mrr = sum(mrr_by_customer_at(session, now).values())
    drafts = session.execute(
        select(Invoice.period_start, func.count())
        .where(Invoice.status == "draft")
        .group_by(Invoice.period_start)
        .order_by(Invoice.period_start)
    ).all()
    waiting = sum(int(n) for _, n in drafts)
    receivables = ageing(session, now)
    overdue = int((receivables.invoices["bucket"] != "current").sum())
    return [
        Metric("MRR", compact_money(mrr, currency), f"all customers, converted to {currency}"),
        Metric(
            "Drafts to finalise",
            f"{waiting:,}",
            f"invoices of {', '.join(label(start) for start, _ in drafts)}"
            if drafts
            else "no drafts waiting",
        ),
        Metric(
            "Overdue receivables",
            compact_money(receivables.totals["overdue"], currency),
            f"owed on open and uncollectible invoices past their due date, in {currency}",
        ),
        Metric("Overdue invoices", f"{overdue:,}"),
    ]
