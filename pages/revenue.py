"""Revenue: MRR and ARR with their monthly movements, churn, receivables ageing, cohort retention,
and gross margin after LLM cost per customer and plan, with the customers we lose money on first.

Money arrives from core in integer minor units. Tables show it as exact Decimals of major units
(sortable, exact in the CSV); only chart axes use floats, which are drawn, never added up."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from core.auth.actor import Actor
from core.auth.roles import Permission
from core.billing.catalog import BILLING_CURRENCIES
from core.billing.formatting import compact_money, money
from core.billing.margin import latest_revenue_month, margin
from core.billing.metrics import Kpis, cohort_matrix, cohort_retention, kpis, mrr_history
from core.billing.periods import add_months, label, month_start
from core.billing.pricing import exponent
from core.billing.receivables import BUCKET_LABELS, BUCKETS, ar_ageing
from core.clock import today, utcnow
from core.errors import DomainError

RANGE_KEY = "rev_range"
CURRENCY_KEY = "rev_currency"
MARGIN_MONTH_KEY = "rev_margin_month"
ALL_MONTHS = "all"
MONEY_COLUMN = st.column_config.NumberColumn(format="accounting")
SHARE_COLUMN = st.column_config.NumberColumn(format="percent")
HISTORY_MONEY = [
    "MRR",
    "ARR",
    "ARPA",
    "New",
    "Expansion",
    "Contraction",
    "Churn",
    "Reactivation",
    "Net new",
]
CUSTOMER_MARGIN_COLUMNS = [
    "Losing money",
    "Customer",
    "Customer ID",
    "Plan",
    "Revenue",
    "LLM cost",
    "Gross margin",
    "Margin %",
]
MARGIN_CONFIG = {
    "Revenue": MONEY_COLUMN,
    "LLM cost": MONEY_COLUMN,
    "Gross margin": MONEY_COLUMN,
    "Margin %": st.column_config.NumberColumn(format="%.1f %%"),
}
AGE_COLOURS = ["#2e7d32", "#fbc02d", "#ef6c00", "#e64a19", "#c62828"]  # current ... 90+ days
MOVEMENTS = {  # column -> (legend, colour); contraction and churn arrive negative
    "new": ("New", "#2e7d32"),
    "expansion": ("Expansion", "#66bb6a"),
    "reactivation": ("Reactivation", "#26a69a"),
    "contraction": ("Contraction", "#ef6c00"),
    "churn": ("Churn", "#c62828"),
}


def render() -> None:
    actor = deps.page_actor(Permission.BILLING_READ)
    st.title("Revenue")
    st.caption(
        "Recurring revenue from subscriptions (licensed prices only, Stripe's MRR rules), what "
        "customers owe, how cohorts stay, and what each customer's LLM traffic costs against "
        "what they pay. Figures in one currency: one billing currency, or all customers "
        "converted at the reporting rates."
    )
    try:
        chosen = _filters()
        if chosen is None:
            st.info("Pick the last month of the range too.")
            return
        start, end, currency = chosen
        now = utcnow()
        # KPIs and ageing at the end of the range, or now while the range reaches today
        as_of: date | datetime = now if end >= now.date() else end
        figures = kpis(actor, as_of, currency)
        _kpi_row(figures)
        mrr_tab, ar_tab, cohort_tab, margin_tab = st.tabs(
            ["MRR & churn", "Receivables", "Cohorts", "Margin"]
        )
        with mrr_tab:
            _mrr(actor, start, end, currency)
        with ar_tab:
            _receivables(actor, as_of, currency)
        with cohort_tab:
            _cohorts(actor, start, end, currency)
        with margin_tab:
            _margin(actor, start, end, currency, now)
    except DomainError as exc:
        deps.show_error(exc)


# --- filters and formatting ---------------------------------------------------------------------


def default_range(today: date) -> tuple[date, date]:
    """The last 12 months: from the first day of the month 11 months back to today."""
    first = add_months(month_start(today.year, today.month), -11)
    return first.date(), today


def _filters() -> tuple[date, date, str | None] | None:
    today_utc = today()
    reporting = deps.settings().billing_reporting_currency
    left, right = st.columns([2, 1])
    if RANGE_KEY not in st.session_state:  # the default through session state keeps the choice
        st.session_state[RANGE_KEY] = default_range(today_utc)
    picked = left.date_input(
        "Months",
        max_value=today_utc,
        format="YYYY-MM-DD",
        key=RANGE_KEY,
        help="Whole months from the first date's month to the last date's month.",
    )
    currency = right.selectbox(
        "Currency",
        [None, *BILLING_CURRENCIES],
        format_func=lambda c: c or f"All, converted to {reporting}",
        key=CURRENCY_KEY,
        help="One billing currency shows only the customers billed in it.",
    )
    if not isinstance(picked, tuple) or len(picked) != 2:
        return None
    start, end = picked
    return start, end, currency


def major(amount: int, currency: str) -> Decimal:
    return Decimal(int(amount)).scaleb(-exponent(currency))


def axis(series: pd.Series, currency: str) -> pd.Series:
    """Minor units as floats of major units: for chart axes only."""
    return series.astype("int64") / 10 ** exponent(currency)


def signed(amount: int, currency: str, *, compact: bool = False) -> str:
    shown = (compact_money if compact else money)(abs(amount), currency)
    return ("+" if amount > 0 else "-" if amount < 0 else "") + shown


def percent(share: float) -> str:
    return "n/a" if math.isnan(share) else f"{share * 100:.2f} %"


def money_frame(frame: pd.DataFrame, columns: list[str], currency: str) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        out[column] = [major(v, currency) for v in out[column]]
    return out


def _table(
    frame: pd.DataFrame,
    money_columns: list[str],
    file_name: str,
    key: str,
    shares: tuple[str, ...] = (),
) -> None:
    """A table with its money columns as exact amounts and `shares` (0..1) as percentages,
    and its CSV download (shares stay plain fractions there)."""
    config: dict[str, Any] = {c: MONEY_COLUMN for c in money_columns}
    config |= {c: SHARE_COLUMN for c in shares}
    st.dataframe(frame, hide_index=True, width="stretch", column_config=config)
    widgets.csv_download(frame, "Download CSV", file_name, key=key)


# --- KPIs ---------------------------------------------------------------------------------------


def _kpi_row(k: Kpis) -> None:
    c = k.currency
    st.caption(f"At {deps.local_time(k.at, '%Y-%m-%d %H:%M')}, in {c}")
    row = st.columns(4)
    row[0].metric(
        "MRR",
        compact_money(k.mrr, c),
        signed(k.net_new_this_month, c) + " this month",
        help=f"exactly {money(k.mrr, c)}",
        border=True,
    )
    row[1].metric("ARR", compact_money(k.arr, c), help=f"exactly {money(k.arr, c)}", border=True)
    row[2].metric("Paying customers", f"{k.customers:,}", border=True)
    row[3].metric("ARPA", money(k.arpa, c), help="average MRR per paying account", border=True)
    row = st.columns(4)
    row[0].metric(
        "Net new MRR, last month",
        signed(k.net_new_last_month, c, compact=True),
        help="new + expansion + reactivation - contraction - churn",
        border=True,
    )
    row[1].metric(
        "Logo churn, last month",
        percent(k.logo_churn_last_month),
        help="paying customers at the start of last month who stopped paying during it",
        border=True,
    )
    row[2].metric(
        "Revenue churn, last month",
        percent(k.revenue_churn_last_month),
        help="MRR lost to churn and contraction, over MRR at the start of last month",
        border=True,
    )
    row[3].metric(
        "Overdue receivables",
        compact_money(k.ar_overdue, c),
        help="owed on open and uncollectible invoices past their due date",
        border=True,
    )


# --- MRR ----------------------------------------------------------------------------------------


def _mrr(actor: Actor, start: date, end: date, currency: str | None) -> None:
    history = mrr_history(actor, start, end, currency)
    c = history.attrs["currency"]
    if history.empty or not history["mrr"].any():
        st.info("No recurring revenue in this range.")
        return
    months = pd.to_datetime(history["month"])
    st.subheader("MRR")
    widgets.chart(
        px.line(
            pd.DataFrame({"month": months, f"MRR ({c})": axis(history["mrr"], c)}),
            x="month",
            y=f"MRR ({c})",
            markers=True,
        ),
        height=260,
    )
    st.subheader("MRR movements")
    moves = pd.DataFrame(
        {
            "month": list(months) * len(MOVEMENTS),
            "movement": [MOVEMENTS[m][0] for m in MOVEMENTS for _ in months],
            c: pd.concat([axis(history[m], c) for m in MOVEMENTS], ignore_index=True),
        }
    )
    widgets.chart(
        px.bar(
            moves,
            x="month",
            y=c,
            color="movement",
            barmode="relative",
            color_discrete_map={legend: colour for legend, colour in MOVEMENTS.values()},
        ),
        height=280,
    )
    st.subheader("Churn")
    rates = pd.DataFrame(
        {
            "month": list(months) * 2,
            "rate": ["Logo churn"] * len(months) + ["Revenue churn"] * len(months),
            "%": pd.concat(
                [history["logo_churn_rate"] * 100, history["revenue_churn_rate"] * 100],
                ignore_index=True,
            ),
        }
    )
    widgets.chart(px.line(rates, x="month", y="%", color="rate", markers=True), height=220)
    money_columns = ["mrr", "arr", "arpa", "new", "expansion", "reactivation"]
    money_columns += ["contraction", "churn", "net_new"]
    table = money_frame(history, money_columns, c).rename(
        columns={
            "month": "Month",
            "mrr": "MRR",
            "arr": "ARR",
            "customers": "Paying customers",
            "arpa": "ARPA",
            "new": "New",
            "expansion": "Expansion",
            "contraction": "Contraction",
            "churn": "Churn",
            "reactivation": "Reactivation",
            "net_new": "Net new",
            "logo_churn_rate": "Logo churn",
            "revenue_churn_rate": "Revenue churn",
        }
    )
    table["Month"] = [m.strftime("%Y-%m") for m in history["month"]]
    with st.expander(f"Monthly figures ({c})"):
        _table(
            table,
            HISTORY_MONEY,
            f"mrr-{c}.csv",
            "rev_mrr_csv",
            shares=("Logo churn", "Revenue churn"),
        )


# --- receivables --------------------------------------------------------------------------------


def _receivables(actor: Actor, as_of: date | datetime, currency: str | None) -> None:
    ageing = ar_ageing(actor, as_of, currency)
    c = ageing.currency
    st.subheader("Receivables ageing")
    st.caption(
        f"Owed on open and uncollectible invoices: {money(ageing.totals['total'], c)}, of which "
        f"{money(ageing.totals['overdue'], c)} overdue."
    )
    buckets = pd.DataFrame(
        {
            "bucket": [BUCKET_LABELS[b] for b in BUCKETS],
            c: [ageing.totals[b] / 10 ** exponent(c) for b in BUCKETS],
        }
    )
    widgets.chart(
        px.bar(buckets, x="bucket", y=c, color="bucket", color_discrete_sequence=AGE_COLOURS),
        height=240,
    )
    if ageing.customers.empty:
        st.info("Nothing is owed.")
        return
    customers = money_frame(ageing.customers, [*BUCKETS, "overdue", "total"], c).rename(
        columns={"customer_id": "Customer ID", "customer": "Customer", "invoices": "Invoices"}
        | BUCKET_LABELS
        | {"overdue": "Overdue", "total": "Total"}
    )
    st.write(f"**Per customer** ({c}, most overdue first)")
    _table(
        customers,
        [*BUCKET_LABELS.values(), "Overdue", "Total"],
        f"receivables-{c}.csv",
        "rev_ar_csv",
    )
    with st.expander("Invoices owed"):
        invoices = ageing.invoices.copy()
        invoices["due_at"] = [deps.local_time(d, "%Y-%m-%d") for d in invoices["due_at"]]
        invoices["bucket"] = invoices["bucket"].map(BUCKET_LABELS)
        invoices["amount_due_invoice_currency"] = [
            major(a, cur)
            for a, cur in zip(
                invoices["amount_due_invoice_currency"], invoices["invoice_currency"], strict=True
            )
        ]
        invoices["amount_due"] = [major(a, c) for a in invoices["amount_due"]]
        invoices = invoices.rename(
            columns={
                "invoice_id": "ID",
                "number": "Invoice",
                "customer_id": "Customer ID",
                "customer": "Customer",
                "status": "Status",
                "due_at": "Due",
                "days_past_due": "Days past due",
                "bucket": "Bucket",
                "invoice_currency": "Currency",
                "amount_due_invoice_currency": "Due (invoice currency)",
                "amount_due": f"Due ({c})",
            }
        )
        _table(
            invoices,
            ["Due (invoice currency)", f"Due ({c})"],
            f"receivables-invoices-{c}.csv",
            "rev_ar_inv_csv",
        )


# --- cohorts ------------------------------------------------------------------------------------


def _cohorts(actor: Actor, start: date, end: date, currency: str | None) -> None:
    cohorts = cohort_retention(actor, start, end, currency)
    st.subheader("Cohort retention")
    if cohorts.empty:
        st.info("No customer started paying in this range.")
        return
    measure = st.radio(
        "Retention of",
        ["logo_retention", "revenue_retention"],
        format_func=lambda m: "customers" if m == "logo_retention" else "MRR",
        horizontal=True,
        key="rev_cohort_measure",
    )
    grid = cohort_matrix(cohorts, measure) * 100
    figure = px.imshow(
        grid,
        text_auto=".0f",
        aspect="auto",
        color_continuous_scale="Blues",
        labels={"x": "months since first payment", "y": "cohort", "color": "%"},
    )
    widgets.chart(figure, height=max(240, 26 * len(grid) + 60))
    c = cohorts.attrs["currency"]
    table = money_frame(cohorts, ["cohort_mrr", "mrr"], c).drop(columns=["cohort"])
    table = table.rename(
        columns={
            "cohort_label": "Cohort",
            "months_since": "Months since",
            "cohort_size": "Cohort size",
            "customers": "Still paying",
            "logo_retention": "Logo retention",
            "cohort_mrr": "Starting MRR",
            "mrr": "MRR",
            "revenue_retention": "Revenue retention",
        }
    )
    with st.expander("Cohort figures"):
        _table(
            table,
            ["Starting MRR", "MRR"],
            f"cohorts-{c}.csv",
            "rev_cohort_csv",
            shares=("Logo retention", "Revenue retention"),
        )


# --- margin -------------------------------------------------------------------------------------


def complete_months(start: date, end: date, now: datetime) -> list[str]:
    """Months of the range that have ended (and so were invoiced), newest first."""
    months: list[str] = []
    month = month_start(start.year, start.month)
    while month.date() <= end and add_months(month, 1) <= now:
        months.append(label(month))
        month = add_months(month, 1)
    return months[::-1]


def _margin_window(months: list[str]) -> tuple[date, date]:
    if st.session_state.get(MARGIN_MONTH_KEY) not in [*months, ALL_MONTHS]:
        st.session_state[MARGIN_MONTH_KEY] = months[0]
    choice = st.selectbox(
        "Margin for",
        [*months, ALL_MONTHS],
        format_func=lambda m: (
            f"all complete months ({months[-1]} to {months[0]})" if m == ALL_MONTHS else m
        ),
        key=MARGIN_MONTH_KEY,
        help="Complete months only: the current month's LLM cost has no invoice against it yet.",
    )
    first, last = (months[-1], months[0]) if choice == ALL_MONTHS else (choice, choice)
    lo = datetime.strptime(first, "%Y-%m").replace(tzinfo=UTC)
    hi = add_months(datetime.strptime(last, "%Y-%m").replace(tzinfo=UTC), 1)
    return lo.date(), hi.date()


def _offer_latest_month(actor: Actor, months: list[str]) -> None:
    """An empty month says so, and offers the newest month with revenue in the range."""
    latest = latest_revenue_month(actor)
    if latest is None or latest not in months or latest == st.session_state.get(MARGIN_MONTH_KEY):
        st.info("No revenue and no LLM cost in these months.")
        return
    widgets.offer(
        f"No revenue and no LLM cost in these months. The latest month with revenue is {latest}.",
        f"Show {latest}",
        "rev_margin_latest",
        {MARGIN_MONTH_KEY: latest},
    )


def _flag(value: Any) -> str:
    return "background-color: #ffcdd2; color: #b71c1c; font-weight: 600" if bool(value) else ""


def _margin(actor: Actor, start: date, end: date, currency: str | None, now: datetime) -> None:
    st.subheader("Margin after LLM cost")
    months = complete_months(start, end, now)
    if not months:
        st.info("The range has no complete month yet.")
        return
    window = _margin_window(months)
    result = margin(actor, *window, currency)
    c = result.currency
    last_day = window[1] - timedelta(days=1)
    st.caption(
        f"Revenue: invoices of {window[0]:%Y-%m} to {last_day:%Y-%m} (drafts included, void "
        "excluded), net of discounts, tax and credit notes. LLM cost: the gateway's usage "
        f"ledger for the same dates, converted from USD. In {c}."
    )
    customers = result.customers
    if customers.empty:
        _offer_latest_month(actor, months)
        return
    losing = int(customers["losing_money"].sum())
    if losing:
        st.warning(f"{losing:,} customers cost more in LLM traffic than they paid.")
    else:
        st.success("Every customer paid more than their LLM traffic cost.")
    # the ones we lose money on first, worst first
    ordered = customers.sort_values(
        ["losing_money", "gross_margin", "customer_id"],
        ascending=[False, True, True],
        kind="stable",
    )
    top = ordered.sort_values("llm_cost", ascending=False, kind="stable").head(15)
    st.write("**Revenue and LLM cost of the 15 customers with the highest LLM cost**")
    _versus(top, "customer", c, horizontal=True)
    st.write(f"**Per customer** ({c}; the ones we lose money on first)")
    _margin_table(ordered, c, "customers", "rev_margin_csv", CUSTOMER_MARGIN_COLUMNS)
    _plans(result.plans, c)


def _margin_table(
    frame: pd.DataFrame, c: str, name: str, key: str, columns: list[str] | None = None
) -> None:
    """A margin table with the loss-makers highlighted, and its CSV."""
    table = money_frame(frame, ["revenue", "llm_cost", "gross_margin"], c).rename(
        columns=_MARGIN_NAMES
    )
    if columns is not None:
        table = table[columns]
    st.dataframe(
        table.style.map(_flag, subset=["Losing money"]),
        hide_index=True,
        width="stretch",
        column_config=MARGIN_CONFIG,
    )
    widgets.csv_download(table, "Download CSV", f"margin-{name}-{c}.csv", key=key)


_MARGIN_NAMES = {
    "customer_id": "Customer ID",
    "organisation_id": "Organisation ID",
    "customer": "Customer",
    "plan": "Plan",
    "customers": "Customers",
    "customers_losing_money": "Losing money (customers)",
    "revenue": "Revenue",
    "llm_cost": "LLM cost",
    "gross_margin": "Gross margin",
    "margin_pct": "Margin %",
    "losing_money": "Losing money",
}


def _versus(frame: pd.DataFrame, name: str, c: str, *, horizontal: bool) -> None:
    """Grouped bars: revenue next to LLM cost for each row of `frame` (named by `name`)."""
    chart = pd.DataFrame(
        {
            name: list(frame[name]) * 2,
            "what": ["Revenue"] * len(frame) + ["LLM cost"] * len(frame),
            c: pd.concat(
                [axis(frame["revenue"], c), axis(frame["llm_cost"], c)], ignore_index=True
            ),
        }
    )
    x, y = (c, name) if horizontal else (name, c)
    figure = px.bar(
        chart,
        x=x,
        y=y,
        color="what",
        barmode="group",
        orientation="h" if horizontal else "v",
        color_discrete_map={"Revenue": "#1e88e5", "LLM cost": "#c62828"},
    )
    widgets.chart(figure, height=max(260, 34 * len(frame)) if horizontal else 240)


def _plans(plans: pd.DataFrame, c: str) -> None:
    st.write(f"**Per plan** ({c})")
    _versus(plans, "plan", c, horizontal=False)
    _margin_table(plans, c, "plans", "rev_plans_csv")


if __name__ == "__main__":
    render()
