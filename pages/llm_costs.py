"""LLM spend & prices: what model traffic costs, per team and customer; the versioned price
table; monthly budgets that stop traffic when spent."""

from datetime import timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from core.auth.roles import Permission
from core.errors import DomainError
from core.llm.analytics import latest_traffic_at, traffic
from core.llm.budgets import delete_budget, list_budgets, set_budget
from core.llm.pricing import list_prices, set_price
from core.money import format_usd
from core.windows import trailing


def _spend(actor) -> None:  # type: ignore[no-untyped-def]
    default = trailing(timedelta(days=30))
    window = widgets.data_window(
        "costs_window",
        default,
        latest_traffic_at(actor),
        what="LLM traffic",
        period="the last 30 days",
        zone=deps.viewer_zone(),
    )
    if window is None:
        return
    t = traffic(actor, window.start, window.end)
    shown = "last 30 days" if window == default else window.describe(deps.viewer_zone())
    st.metric(f"Spend, {shown}", format_usd(t.cost_micros), border=True)
    if t.requests == 0:
        st.info(f"No LLM traffic in the {shown}.")
        return
    left, right = st.columns(2)
    with left:
        st.caption("By team")
        widgets.chart(
            px.bar(
                t.spend_by_team.assign(usd=t.spend_by_team["cost_micros"] / 1e6), x="team", y="usd"
            )
        )
    with right:
        st.caption("Top customers")
        frame = t.spend_by_customer.assign(
            usd=t.spend_by_customer["cost_micros"] / 1e6,
            customer=lambda f: f["customer_id"].astype(int).astype(str),
        )
        widgets.chart(px.bar(frame, x="customer", y="usd"))


def _prices(actor) -> None:  # type: ignore[no-untyped-def]
    with st.form("new_price", clear_on_submit=True):
        st.caption("A new price applies from now; earlier calls keep the price they were charged.")
        c1, c2, c3, c4 = st.columns(4)
        provider = c1.text_input("Provider", max_chars=32)
        model = c2.text_input("Model", max_chars=128)
        input_price = c3.text_input("Input $ per million tokens", max_chars=20)
        output_price = c4.text_input("Output $ per million tokens", max_chars=20)
        note = st.text_input("Note", max_chars=200)
        if st.form_submit_button("Add price", type="primary"):
            try:
                set_price(actor, provider, model, input_price, output_price, note=note)
            except DomainError as exc:
                deps.show_error(exc)
            else:
                st.success(f"Price for {model} added.")
    # Drawn after the form, so a price added just now is already in the table.
    rows = [
        {
            "Model": p.model,
            "Provider": p.provider,
            "Input $/M tokens": p.input_per_mtok_micros / 1e6,
            "Output $/M tokens": p.output_per_mtok_micros / 1e6,
            "From": deps.local_time(p.effective_from, "%Y-%m-%d %H:%M"),
            "By": p.created_by,
            "Note": p.note,
        }
        for p in list_prices(actor)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _budgets(actor) -> None:  # type: ignore[no-untyped-def]
    with st.form("budget", clear_on_submit=True):
        c1, c2, c3 = st.columns(3)
        scope = c1.selectbox("Scope", ["team", "customer"])
        subject = c2.text_input("Team name or organisation number", max_chars=64)
        limit = c3.text_input("Monthly limit ($)", max_chars=20)
        save, remove = st.columns(2)
        if save.form_submit_button("Set budget", type="primary"):
            try:
                set_budget(actor, scope, subject, limit)
            except DomainError as exc:
                deps.show_error(exc)
            else:
                st.success(f"Budget for {scope} {subject} set.")
        if remove.form_submit_button("Remove budget"):
            try:
                delete_budget(actor, scope, subject)
            except DomainError as exc:
                deps.show_error(exc)
            else:
                st.success(f"Budget for {scope} {subject} removed.")
    widgets.budget_bars(list_budgets(actor))  # after the form: includes a budget set just now


def render() -> None:
    actor = deps.page_actor(Permission.LLM_PRICES_MANAGE)
    st.title("LLM spend & prices")
    try:
        spend_tab, prices_tab, budgets_tab = st.tabs(["Spend", "Prices", "Budgets"])
        with spend_tab:
            _spend(actor)
        with prices_tab:
            _prices(actor)
        with budgets_tab:
            _budgets(actor)
    except DomainError as exc:
        deps.show_error(exc)


if __name__ == "__main__":
    render()
