"""Invoices: the monthly invoice run and its report, finalising a period's drafts, the invoice
list with filters and CSV export, one invoice in full with its PDF and the actions its status
allows (finalise, void, uncollectible, bank-transfer payment, credit note), usage CSV import and
the recent runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

import pandas as pd
import streamlit as st

from console import deps, widgets
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.billing.credit_notes import REASONS, issue_credit_note
from core.billing.formatting import money
from core.billing.invoice_status import (
    STATUSES,
    finalise_invoice,
    finalise_period,
    mark_uncollectible,
    record_payment,
    void_invoice,
)
from core.billing.invoices_read import (
    InvoiceDetail,
    InvoiceRow,
    invoice_detail,
    latest_invoiced_period,
    list_invoices,
)
from core.billing.invoicing import RunReport, list_runs, run_invoices
from core.billing.pdf import invoice_pdf
from core.billing.periods import add_months, label, month_of, parse_period
from core.billing.pricing import exponent, to_minor
from core.billing.stripe.client import SYNC_OFF, sync_enabled
from core.billing.usage import CSV_COLUMNS, ImportReport, import_usage_csv
from core.clock import utcnow
from core.errors import DomainError, ValidationError

FLASH_KEY = "invoices_flash"
REPORT_KEY = "invoices_run_report"
IMPORT_KEY = "invoices_import_report"
PERIOD_KEY = "inv_period"
SELECTED_KEY = "inv_selected"
ALL = "All"
PERIODS_SHOWN = 24
MONEY_COLUMN = st.column_config.NumberColumn(format="accounting")


def render() -> None:
    actor = deps.page_actor(Permission.BILLING_READ)
    st.title("Invoices")
    st.caption(
        "Invoices are drafted per customer and calendar month, in arrears: run a month once it "
        "has ended (running it again only fills gaps and refreshes changed drafts), review the "
        "drafts, then finalise them. A finalised invoice never changes; correct it with a "
        "credit note."
    )
    if not sync_enabled():
        st.info(
            f"{SYNC_OFF} Invoices and payments stay in the local ledger.",
            icon=":material/sync_disabled:",
        )
    widgets.show_flash(FLASH_KEY)
    try:
        period = _period_picker(actor)
        can_invoice = has_permission(actor.role, Permission.BILLING_INVOICE)
        rows = list_invoices(actor, period=period)
        if can_invoice:
            _run_and_finalise(actor, period, rows)
            _run_report(period)
        invoices_tab, runs_tab, usage_tab = st.tabs(["Invoices", "Runs", "Usage import"])
        with invoices_tab:
            shown = _invoice_table(actor, rows, period)
            _detail(actor, shown, can_invoice)
        with runs_tab:
            _runs(actor)
        with usage_tab:
            _usage_import(actor)
    except DomainError as exc:
        deps.show_error(exc)


# --- period, run, finalise ----------------------------------------------------------------------


def last_complete_month(now: datetime) -> datetime:
    return add_months(month_of(now)[0], -1)


def _period_picker(actor: Actor) -> str:
    """Months up to the last complete one (the default: the one to run next), newest first."""
    latest = last_complete_month(utcnow())
    periods = {label(add_months(latest, -n)) for n in range(PERIODS_SHOWN)}
    periods |= {r.period for r in list_runs(actor)}  # older runs stay reachable
    if invoiced := latest_invoiced_period(actor):
        periods.add(invoiced)
    options = sorted(periods, reverse=True)
    # A default through session state (not `index`), so the choice survives reruns.
    if st.session_state.get(PERIOD_KEY) not in options:
        st.session_state[PERIOD_KEY] = label(latest)
    return str(st.selectbox("Billing period", options, key=PERIOD_KEY))


def _run_and_finalise(actor: Actor, period: str, rows: list[InvoiceRow]) -> None:
    run_col, finalise_col = st.columns(2)
    try:
        with run_col:
            if st.button(f"Run invoices for {period}", type="primary", key="inv_run"):
                _run(actor, period)
        with finalise_col:
            _finalise_all(actor, period, sum(1 for r in rows if r.status == "draft"))
    except DomainError as exc:
        deps.show_error(exc)


def _run(actor: Actor, period: str) -> None:
    with st.status(f"Running invoices for {period}...") as status:
        report = run_invoices(
            actor, period, after_batch=lambda n: status.update(label=f"Batch {n} written...")
        )
        status.update(label="Done", state="complete")
    st.session_state[REPORT_KEY] = report
    widgets.flash(FLASH_KEY, _report_text(report))
    st.rerun()


def _finalise_all(actor: Actor, period: str, drafts: int) -> None:
    if not drafts:
        st.caption(f"No drafts waiting in {period}.")
        return
    # keyed by period and count: other drafts than the ones reviewed need a new confirmation
    confirm_key = f"inv_finalise_ok_{period}_{drafts}"
    confirm = st.checkbox(f"I have reviewed the {drafts:,} drafts of {period}", key=confirm_key)
    if st.button(f"Finalise all drafts of {period}", disabled=not confirm, key="inv_finalise_all"):
        done = finalise_period(actor, parse_period(period)[0])
        st.session_state.pop(confirm_key, None)
        widgets.flash(FLASH_KEY, f"Finalised {done:,} invoices of {period}.")
        st.rerun()


def _run_report(period: str) -> None:
    report: RunReport | None = st.session_state.get(REPORT_KEY)
    if report is not None and report.period == period:
        cols = st.columns(4)
        cols[0].metric("Created", f"{report.created:,}", border=True)
        cols[1].metric("Updated", f"{report.updated:,}", border=True)
        cols[2].metric("Unchanged", f"{report.unchanged:,}", border=True)
        cols[3].metric(
            "Already finalised",
            f"{report.finalised_skipped:,}",
            help="finalised invoices are never rewritten; correct them with credit notes",
            border=True,
        )
        if report.total_by_currency:
            st.caption(
                f"Totals for {period}: "
                + ", ".join(money(v, c) for c, v in sorted(report.total_by_currency.items()))
            )


def _report_text(report: RunReport) -> str:
    return (
        f"Run #{report.run_id} for {report.period}: {report.customers:,} customers to bill, "
        f"{report.created:,} created, {report.updated:,} updated, {report.unchanged:,} "
        f"unchanged, {report.finalised_skipped:,} already finalised."
    )


# --- the list ---------------------------------------------------------------------------------


def _offer_latest_period(actor: Actor, period: str) -> None:
    """An empty month says so, and offers the newest month that has invoices."""
    latest = latest_invoiced_period(actor)
    if latest is None or latest == period:
        st.info(f"No invoices for {period} yet.")
        return
    widgets.offer(
        f"No invoices for {period} yet. The latest invoices are of {latest}.",
        f"Show {latest}",
        "inv_show_latest",
        {PERIOD_KEY: latest},
    )


def major(amount: int, currency: str) -> Decimal:
    """Minor units as an exact Decimal of major units (sortable in a table, exact in a CSV)."""
    return Decimal(amount).scaleb(-exponent(currency))


def _invoice_table(actor: Actor, rows: list[InvoiceRow], period: str) -> list[InvoiceRow]:
    st.subheader(f"Invoices of {period}")
    if not rows:
        _offer_latest_period(actor, period)
        return []
    counts = pd.Series([r.status for r in rows]).value_counts()
    st.caption(" · ".join(f"{n:,} {s}" for s, n in counts.items()))
    f1, f2 = st.columns([1, 2])
    status = f1.selectbox("Status", [ALL, *STATUSES], key="inv_status")
    search = f2.text_input(
        "Customer", placeholder="name, customer id or invoice number", key="inv_search"
    )
    needle = search.strip().lower()
    shown = [
        r
        for r in rows
        if (status == ALL or r.status == status)
        and (
            not needle
            or needle in r.customer.lower()
            or needle == str(r.customer_id)
            or needle in (r.number or "").lower()
        )
    ]
    frame = pd.DataFrame(
        [
            {
                "Invoice": r.number or "(draft)",
                "ID": r.id,
                "Customer": r.customer,
                "Customer ID": r.customer_id,
                "Status": r.status,
                "Currency": r.currency,
                "Subtotal": major(r.subtotal, r.currency),
                "Discount": major(r.discount, r.currency),
                "Tax": major(r.tax, r.currency),
                "Total": major(r.total, r.currency),
                "Amount due": major(r.amount_due, r.currency),
                "Issued": deps.local_time(r.issued_at, "%Y-%m-%d"),
                "Due": deps.local_time(r.due_at, "%Y-%m-%d"),
                "Stripe": r.stripe_id or "",
            }
            for r in shown
        ],
        columns=[
            "Invoice",
            "ID",
            "Customer",
            "Customer ID",
            "Status",
            "Currency",
            "Subtotal",
            "Discount",
            "Tax",
            "Total",
            "Amount due",
            "Issued",
            "Due",
            "Stripe",
        ],
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            c: MONEY_COLUMN for c in ("Subtotal", "Discount", "Tax", "Total", "Amount due")
        },
    )
    widgets.csv_download(frame, "Download CSV", f"invoices-{period}.csv", key="inv_csv")
    return shown


# --- one invoice --------------------------------------------------------------------------------


def _choice(row: InvoiceRow) -> str:
    name = row.number or f"Draft #{row.id}"
    return f"{name} · {row.customer} · {row.status} · {money(row.total, row.currency)}"


def _detail(actor: Actor, shown: list[InvoiceRow], can_invoice: bool) -> None:
    if not shown:
        return
    by_id = {r.id: r for r in shown}
    chosen = st.selectbox(
        "Invoice",
        list(by_id),
        index=None,
        format_func=lambda i: _choice(by_id[i]),
        placeholder="Choose an invoice to see it in full",
        key=SELECTED_KEY,
    )
    if chosen is None:
        return
    detail = invoice_detail(actor, int(chosen))
    inv = detail.invoice
    title = f"Invoice {inv.number}" if inv.number else f"Draft invoice #{inv.id}"
    with st.container(border=True):
        st.subheader(title)
        st.caption(
            f"{detail.customer.name} (customer {inv.customer_id}, {detail.customer.country}"
            f"{', VAT id ' + detail.customer.vat_id if detail.customer.vat_id else ''}) · "
            f"period {inv.period} · status **{inv.status}** · issued "
            f"{deps.local_time(inv.issued_at, '%Y-%m-%d') or '-'} · due "
            f"{deps.local_time(inv.due_at, '%Y-%m-%d') or '-'}"
        )
        cols = st.columns(4)
        cols[0].metric("Total", money(inv.total, inv.currency))
        cols[1].metric("Credited", money(detail.amount_credited, inv.currency))
        cols[2].metric("Paid", money(detail.amount_paid, inv.currency))
        cols[3].metric("Amount due", money(inv.amount_due, inv.currency))
        _lines(detail)
        _payments_and_credits(detail)
        st.download_button(
            "Download PDF",
            data=lambda: invoice_pdf(actor, inv.id),
            file_name=f"{inv.number or f'draft-{inv.id}'}.pdf",
            mime="application/pdf",
            on_click="ignore",
            icon=":material/picture_as_pdf:",
            key=f"inv_pdf_{inv.id}",
        )
        if can_invoice:
            _actions(actor, detail)


def _lines(detail: InvoiceDetail) -> None:
    inv = detail.invoice
    lines = pd.DataFrame(
        [
            {
                "Description": ln.description,
                "Kind": ln.kind,
                "Quantity": ln.quantity,
                "Amount": major(ln.amount, inv.currency),
            }
            for ln in detail.lines
        ],
        columns=["Description", "Kind", "Quantity", "Amount"],
    )
    st.dataframe(lines, hide_index=True, width="stretch", column_config={"Amount": MONEY_COLUMN})
    totals = [f"Subtotal {money(inv.subtotal, inv.currency)}"]
    if inv.discount:
        totals.append(f"discount -{money(inv.discount, inv.currency)}")
    totals.append(f"VAT {detail.tax_rate_bp / 100:g} % {money(inv.tax, inv.currency)}")
    totals.append(f"total **{money(inv.total, inv.currency)}**")
    st.markdown(" · ".join(totals))
    if detail.tax_note:
        st.caption(f"Tax: {detail.tax_note}")


def _payments_and_credits(detail: InvoiceDetail) -> None:
    currency = detail.invoice.currency
    left, right = st.columns(2)
    with left:
        st.write("**Payments**")
        if detail.payments:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "Paid": deps.local_time(p.paid_at, "%Y-%m-%d %H:%M"),
                            "Amount": money(p.amount, p.currency),
                            "Method": p.method,
                            "Reference": p.reference,
                        }
                        for p in detail.payments
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption("No payments.")
    with right:
        st.write("**Credit notes**")
        if detail.credit_notes:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "Credit note": c.number,
                            "Amount": money(c.amount, currency),
                            "of which VAT": money(c.tax, currency),
                            "Reason": c.reason,
                            "Memo": c.memo,
                            "By": c.created_by,
                            "Issued": deps.local_time(c.created_at, "%Y-%m-%d %H:%M"),
                        }
                        for c in detail.credit_notes
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption("No credit notes.")


def parse_amount(text: str, currency: str) -> int:
    """'1,234.5' EUR -> 123450, exactly (Decimal, never float); refuses more decimals than the
    currency has rather than rounding money someone typed."""
    cleaned = text.strip().replace(",", "").replace(" ", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValidationError(f"{text[:30]!r} is not an amount; write it like 1234.50.") from None
    if not value.is_finite() or value <= 0:
        raise ValidationError("The amount must be a positive number, like 1234.50.")
    digits = exponent(currency)
    if value != value.quantize(Decimal(1).scaleb(-digits)):
        raise ValidationError(f"{currency} amounts have at most {digits} decimals.")
    return to_minor(value, currency)


def _attempt(action: Callable[[], str], clear: tuple[str, ...] = ()) -> None:
    """Run a change: on success flash its message, empty the form's fields (`clear`, widget
    keys) and rerun; on a refusal say why right here and keep what was typed."""
    try:
        message = action()
    except DomainError as exc:
        deps.show_error(exc)
        return
    for key in clear:
        st.session_state.pop(key, None)
    widgets.flash(FLASH_KEY, message)
    st.rerun()


def _actions(actor: Actor, detail: InvoiceDetail) -> None:
    inv = detail.invoice
    if inv.status == "draft":
        if st.button("Finalise this invoice", type="primary", key="inv_finalise_one"):
            _attempt(lambda: f"Finalised as {finalise_invoice(actor, inv.id)}.")
        return
    if inv.status == "void":
        st.caption("A voided invoice takes no further action.")
        return
    if inv.status == "open" and st.button("Mark uncollectible", key="inv_uncollectible"):
        _attempt(lambda: _uncollectible(actor, inv))
    if inv.status in ("open", "uncollectible"):
        if not detail.amount_paid:
            _void_form(actor, inv)
        _payment_form(actor, inv)
    _credit_note_form(actor, detail)


def _uncollectible(actor: Actor, inv: InvoiceRow) -> str:
    mark_uncollectible(actor, inv.id)
    return f"{inv.number} marked uncollectible."


def _void_form(actor: Actor, inv: InvoiceRow) -> None:
    def void() -> str:
        void_invoice(actor, inv.id, reason)
        return f"{inv.number} voided."

    with st.form(f"inv_void_{inv.id}"):
        st.write("**Void**")
        reason = st.text_input("Why is it voided?", max_chars=200, key="inv_void_reason")
        if st.form_submit_button("Void invoice"):
            _attempt(void, clear=("inv_void_reason",))


def _payment_form(actor: Actor, inv: InvoiceRow) -> None:
    def pay() -> str:
        minor = parse_amount(amount, inv.currency)
        record_payment(actor, inv.id, minor, method="bank_transfer", reference=reference)
        return f"Recorded {money(minor, inv.currency)} against {inv.number}."

    with st.form(f"inv_payment_{inv.id}"):
        st.write(f"**Record a bank transfer** (due {money(inv.amount_due, inv.currency)})")
        c1, c2 = st.columns(2)
        amount = c1.text_input(
            f"Amount received ({inv.currency})", max_chars=20, key="inv_pay_amount"
        )
        reference = c2.text_input("Bank reference", max_chars=128, key="inv_pay_reference")
        if st.form_submit_button("Record payment"):
            _attempt(pay, clear=("inv_pay_amount", "inv_pay_reference"))


def _credit_note_form(actor: Actor, detail: InvoiceDetail) -> None:
    inv = detail.invoice
    creditable = inv.total - detail.amount_credited

    def credit() -> str:
        minor = parse_amount(amount, inv.currency)
        result = issue_credit_note(actor, inv.id, minor, reason, memo)
        return (
            f"Credit note {result.number} for {money(result.amount, inv.currency)} issued "
            f"on {inv.number}; the invoice is now {result.invoice_status}."
        )

    with st.form(f"inv_credit_{inv.id}"):
        st.write(f"**Issue a credit note** (up to {money(creditable, inv.currency)}, VAT included)")
        c1, c2 = st.columns(2)
        amount = c1.text_input(f"Amount ({inv.currency})", max_chars=20, key="inv_credit_amount")
        reason = c2.selectbox(
            "Reason", REASONS, format_func=lambda r: r.replace("_", " "), key="inv_credit_reason"
        )
        memo = st.text_area("Memo (printed for the customer)", max_chars=500, key="inv_credit_memo")
        if st.form_submit_button("Issue credit note"):
            _attempt(credit, clear=("inv_credit_amount", "inv_credit_reason", "inv_credit_memo"))


# --- runs and usage -----------------------------------------------------------------------------


def _runs(actor: Actor) -> None:
    runs = list_runs(actor)
    if not runs:
        st.info("No invoice runs yet.")
        return
    frame = pd.DataFrame(
        [
            {
                "Run": r.id,
                "Period": r.period,
                "Started": deps.local_time(r.started_at),
                "Finished": deps.local_time(r.finished_at),
                "By": r.actor,
                "Status": r.status,
                "Created": r.created,
                "Updated": r.updated,
                "Unchanged": r.unchanged,
                "Error": r.error or "",
            }
            for r in runs
        ]
    )
    widgets.state_table(frame, "Status")
    widgets.csv_download(frame, "Download CSV", "invoice-runs.csv", key="inv_runs_csv")


def _usage_import(actor: Actor) -> None:
    st.caption(
        f"Metered usage other than LLM tokens, as CSV with the columns {', '.join(CSV_COLUMNS)} "
        "(timestamp in ISO 8601 with a time zone). All rows or none are imported; events "
        "imported before (same event_id) are skipped, so a file can be imported again safely. "
        "Re-run the month's invoices afterwards to bill it."
    )
    if not has_permission(actor.role, Permission.BILLING_MANAGE):
        st.info("Your role cannot import usage.")
        return
    upload = st.file_uploader("Usage CSV", type=["csv"], key="inv_usage_file")
    if st.button("Import usage", disabled=upload is None, key="inv_usage_import"):
        assert upload is not None
        try:
            imported = import_usage_csv(actor, upload.getvalue(), upload.name)
        except DomainError as exc:
            st.session_state.pop(IMPORT_KEY, None)
            deps.show_error(exc)
        else:
            st.session_state[IMPORT_KEY] = imported
    report: ImportReport | None = st.session_state.get(IMPORT_KEY)
    if report is not None:
        st.success(
            f"Imported {report.rows:,} rows as batch {report.batch}: {report.added:,} new, "
            f"{report.already_imported:,} already imported before."
        )


if __name__ == "__main__":
    render()
