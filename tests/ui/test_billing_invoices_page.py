"""Invoices page: the invoice run and its report (idempotent from the button), the invoice list,
one invoice in full with its PDF, a credit note, a refused void, and usage import.

The demo tenant (anchor 1 Nov 2026) drafted October 2026 and finalised August and September;
the tests pick their invoices there and choose the period through session state, so they do not
depend on today's date (the page defaults to the last complete month)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.auth.roles import Role
from core.billing.invoices_read import list_invoices
from core.billing.pdf import money
from core.clock import utcnow
from tests.helpers import ADMIN
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

ALLOWED = roles_allowed("billing_invoices")
DRAFTED = "2026-10"  # the seeded drafts
FINALISED = "2026-08"  # finalised and mostly paid by the seeder


def invoices_page(role: Role, period: str) -> AppTest:
    at = signed_in_app(role)
    at.session_state["inv_period"] = period
    return open_page(at, "billing_invoices")


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page that has `column`."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.mark.parametrize("role", ALLOWED)
def test_invoices_page_shows_the_period_runs_and_actions(role: Role) -> None:
    at = invoices_page(role, DRAFTED)
    assert not at.exception
    assert at.title[0].value == "Invoices"
    assert any(i.value.startswith("Stripe sync is off") for i in at.info)
    invoices = at.dataframe[0].value
    assert len(invoices) > 1000 and set(invoices["Status"]) == {"draft"}
    assert {"Invoice", "Customer", "Currency", "Total", "Amount due"} <= set(invoices.columns)
    assert all(isinstance(v, Decimal) for v in invoices["Total"])  # exact, and sorts as numbers
    labels = {b.label for b in at.button}
    assert {f"Run invoices for {DRAFTED}", f"Finalise all drafts of {DRAFTED}"} <= labels
    assert next(b for b in at.button if b.label.startswith("Finalise all")).disabled  # confirm
    runs = table_with(at, "Unchanged")
    assert {"2026-08", "2026-09", DRAFTED} <= set(runs["Period"])
    assert any(b.label == "Download CSV" for b in at.get("download_button"))


def test_running_a_drafted_month_again_creates_nothing_and_usage_imports() -> None:
    at = invoices_page(Role.FINANCE, DRAFTED)
    before = at.dataframe[0].value
    reports = []
    for _ in range(2):
        at.button(key="inv_run").click().run()
        assert not at.exception
        assert at.success[0].value.startswith("Run #") and f"for {DRAFTED}:" in at.success[0].value
        reports.append({m.label: int(m.value.replace(",", "")) for m in at.metric})
    after = at.dataframe[0].value
    assert len(after) == len(before)  # no invoice twice
    for report in reports:
        assert report["Created"] == 0  # the seeder drafted every customer already
        assert sum(report.values()) == len(after)  # each invoice of the month counted once
    assert reports[1]["Updated"] == 0  # nothing changed since the first run
    runs = table_with(at, "Unchanged")
    latest = runs.iloc[0]
    assert latest["Period"] == DRAFTED and latest["Created"] == 0

    # usage for a customer, dated in the current month (which is never invoiced by these tests)
    customer = int(after["Customer ID"].iloc[-1])
    month = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    batch = uuid.uuid4().hex[:8]
    csv = "event_id,customer_id,metric,quantity,timestamp\n" + "".join(
        f"ui-{batch}-{n},{customer},api_calls,{100 * n},{month.isoformat()}\n" for n in (1, 2)
    )
    at.file_uploader(key="inv_usage_file").set_value(("usage.csv", csv.encode(), "text/csv"))
    at.run()  # the upload itself reruns the page; the button is enabled from then on
    at.button(key="inv_usage_import").click().run()
    assert not at.exception
    assert "Imported 2 rows" in at.success[-1].value and "2 new, 0 already" in at.success[-1].value


def test_credit_note_on_a_paid_invoice_void_needs_a_reason_and_a_bank_transfer() -> None:
    # invoices at the end of the list (by customer name), which other UI tests leave alone
    paid = next(
        r
        for r in reversed(list_invoices(ADMIN, period=FINALISED, status="paid"))
        if r.total >= 500 and r.currency == "EUR"
    )
    still_open = next(
        r
        for r in reversed(list_invoices(ADMIN, period=FINALISED, status="open"))
        if r.amount_due > 1234 and r.currency == "EUR"
    )
    at = signed_in_app(Role.FINANCE)
    at.session_state["inv_period"] = FINALISED
    at.session_state["inv_selected"] = paid.id
    at = open_page(at, "billing_invoices")
    assert not at.exception
    assert f"Invoice {paid.number}" in [s.value for s in at.subheader]
    assert "Download PDF" in [b.label for b in at.get("download_button")]
    assert "Void invoice" not in [b.label for b in at.button]  # paid: credit notes only

    next(t for t in at.text_input if t.label == "Amount (EUR)").input("3.50")
    next(s for s in at.selectbox if s.label == "Reason").select("order_change")
    at.text_area[0].input("Two seats removed late")
    next(b for b in at.button if b.label == "Issue credit note").click().run()
    assert not at.exception
    message = at.success[0].value
    assert message.startswith("Credit note CN-") and f"issued on {paid.number}" in message
    notes = table_with(at, "Credit note")
    assert list(notes["Amount"]) == ["EUR 3.50"]
    assert list(notes["Memo"]) == ["Two seats removed late"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Credited"] == money(350, "EUR") and metrics["Amount due"] == "EUR 0.00"

    at.selectbox(key="inv_selected").select(still_open.id).run()
    next(t for t in at.text_input if t.label == "Why is it voided?").input("typo")
    next(b for b in at.button if b.label == "Void invoice").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Say why the invoice is voided (at least 5 characters)."]
    assert {m.label: m.value for m in at.metric}["Paid"] == "EUR 0.00"  # still open, unvoided
    assert next(t for t in at.text_input if t.label == "Why is it voided?").value == "typo"

    # a bank transfer typed in major units becomes exact minor units
    next(t for t in at.text_input if t.label == "Amount received (EUR)").input("12.34")
    next(t for t in at.text_input if t.label == "Bank reference").input("SEPA 2026-11 ref 77")
    next(b for b in at.button if b.label == "Record payment").click().run()
    assert not at.exception
    assert at.success[0].value == f"Recorded EUR 12.34 against {still_open.number}."
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Paid"] == "EUR 12.34"
    assert metrics["Amount due"] == money(still_open.amount_due - 1234, "EUR")
    assert next(t for t in at.text_input if t.label.startswith("Amount received")).value == ""
    assert "Void invoice" not in [b.label for b in at.button]  # it has a payment now
    payments = table_with(at, "Reference")
    assert list(payments["Method"]) == ["bank_transfer"]
