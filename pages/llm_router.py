"""LLM router: deployments with health and circuit state, traffic, failovers, spend against
budgets, the usage ledger, and (for admins) the configuration."""

from datetime import timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from core.auth.roles import Permission, has_permission
from core.errors import DomainError
from core.llm import gateway
from core.llm.analytics import latest_traffic_at, traffic
from core.llm.budgets import list_budgets
from core.llm.ledger import UsageFilter, export_usage_csv, search_usage
from core.money import format_usd
from core.windows import Window, trailing

PERIODS = {
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
}
_CIRCUIT = {"closed": "closed", "half_open": "half-open", "open": "open"}


def _deployments(actor) -> None:  # type: ignore[no-untyped-def]
    widgets.state_table(
        pd.DataFrame(
            [
                {
                    "Deployment": s.name,
                    "Provider": s.provider,
                    "Model": s.model,
                    "Tier": s.tier,
                    "Ready": "yes" if s.ready else f"no: {s.reason}",
                    "Circuit": _CIRCUIT.get(s.circuit.state, s.circuit.state),
                    "Recent failures": s.circuit.recent_failures,
                    "Latency avg (ms)": round(s.latency_ms) if s.latency_ms is not None else None,
                    "RPM limit": s.rpm,
                    "TPM limit": s.tpm,
                }
                for s in gateway.deployment_statuses(actor)
            ]
        ),
        "Circuit",
    )
    if has_permission(actor.role, Permission.LLM_ROUTER_MANAGE) and st.button(
        "Reset circuits and limits", icon=":material/restart_alt:", key="router_reset"
    ):
        gateway.reset_circuits(actor)
        st.success("Circuits closed and rate windows cleared.")


def _traffic(actor, window: Window | None) -> None:  # type: ignore[no-untyped-def]
    if window is None:
        st.caption("No traffic in this period: see the notice above.")
        return
    t = traffic(actor, window.start, window.end)
    c = st.columns(5)
    c[0].metric("Requests", f"{t.requests:,}", border=True)
    c[1].metric(
        "Failovers",
        f"{t.failovers:,}",
        border=True,
        help="requests whose first deployment failed and another one answered",
    )
    c[2].metric("Unanswered", f"{t.failed:,}", border=True)
    c[3].metric("Cache hits", f"{t.cache_hits:,}", border=True)
    c[4].metric("Spend", format_usd(t.cost_micros), border=True)
    if t.requests == 0:
        st.info("No traffic in this period.")
        return
    left, right = st.columns([2, 1])
    with left:
        st.caption("Calls per hour by deployment and outcome")
        widgets.chart(
            px.bar(t.per_hour, x="hour", y="calls", color="deployment", pattern_shape="status"),
            height=260,
        )
    with right:
        st.caption("Traffic split (answered calls)")
        widgets.chart(
            px.pie(t.per_deployment, names="deployment", values="ok", hole=0.5), height=260
        )
    table = (
        t.per_deployment.assign(
            error_rate=lambda f: (f["error_rate"] * 100).round(1),
            spend=lambda f: f["cost_micros"].map(format_usd),
            p50_ms=lambda f: f["p50_ms"].round(0),
            p95_ms=lambda f: f["p95_ms"].round(0),
        )
        .drop(columns=["cost_micros"])
        .rename(columns={"error_rate": "error %"})
    )
    st.dataframe(table, hide_index=True, width="stretch")


def _budgets(actor) -> None:  # type: ignore[no-untyped-def]
    budgets = list_budgets(actor)
    if not budgets:
        st.caption("No budgets set. Finance sets them on the LLM spend & prices page.")
        return
    widgets.budget_bars(budgets)


def _ledger(actor, window: Window | None) -> None:  # type: ignore[no-untyped-def]
    if window is None:
        st.caption("No ledger rows in this period: see the notice above.")
        return
    c1, c2, c3 = st.columns(3)
    statuses = c1.multiselect(
        "Status",
        [
            "ok",
            "timeout",
            "unavailable",
            "rate_limited",
            "auth",
            "bad_request",
            "content_filtered",
            "budget_exceeded",
            "limit_exceeded",
            "no_deployment",
        ],
        key="ledger_status",
    )
    deployments = c2.multiselect(
        "Deployment", [s.name for s in gateway.deployment_statuses(actor)], key="ledger_deployments"
    )
    who = c3.text_input("Actor contains", max_chars=128, key="ledger_actor")
    flt = UsageFilter(
        since=window.start,
        until=window.end,
        statuses=statuses,
        deployments=deployments,
        actor=who,
        limit=2_000,
    )
    rows = search_usage(actor, flt)
    if not rows:
        st.info("No ledger rows match.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Time": deps.local_time(r.ts),
                    "Actor": r.actor,
                    "Team": r.team,
                    "Customer": r.customer_id,
                    "Alias": r.alias,
                    "Deployment": r.deployment,
                    "Status": r.status,
                    "Cache": r.cache_hit,
                    "Tokens in": r.input_tokens,
                    "Tokens out": r.output_tokens,
                    "Cost": format_usd(r.cost_micros),
                    "Latency ms": round(r.latency_ms),
                    "Request": r.request_id[:8],
                }
                for r in rows
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    if has_permission(actor.role, Permission.LLM_LEDGER_EXPORT) and st.button(
        "Prepare CSV export", icon=":material/download:", key="ledger_export"
    ):
        csv_text, count = export_usage_csv(actor, flt)
        st.download_button(f"Download {count:,} rows (CSV)", csv_text, "llm_ledger.csv", "text/csv")


def _configuration(actor) -> None:  # type: ignore[no-untyped-def]
    _, text = gateway.router_config(actor)
    can_edit = has_permission(actor.role, Permission.LLM_ROUTER_MANAGE)
    edited = st.text_area(
        "Router configuration (YAML)", text, height=420, disabled=not can_edit, key="router_yaml"
    )
    if can_edit:
        comment = st.text_input("What changed and why", max_chars=200, key="router_comment")
        if st.button("Validate and save", type="primary", key="router_save"):
            gateway.save_router_config(actor, edited, comment)
            st.success("Saved: the new configuration is active.")
    history = gateway.config_history(actor)
    if history:
        st.caption("Saved versions")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Version": h.id,
                        "Saved": deps.local_time(h.created_at),
                        "By": h.created_by,
                        "Comment": h.comment,
                    }
                    for h in history
                ]
            ),
            hide_index=True,
        )


def render() -> None:
    actor = deps.page_actor(Permission.LLM_ROUTER_READ)
    st.title("LLM router")
    period = (
        st.segmented_control("Period", list(PERIODS), default="Last 24 hours", key="router_period")
        or "Last 24 hours"
    )
    try:
        window = widgets.data_window(
            f"router_window_{period}",
            trailing(PERIODS[period]),
            latest_traffic_at(actor),
            what="LLM traffic",
            period="the " + period.lower(),
            zone=deps.viewer_zone(),
        )
        deployments, traffic_tab, budgets_tab, ledger_tab, config_tab = st.tabs(
            ["Deployments", "Traffic", "Budgets", "Ledger", "Configuration"]
        )
        with deployments:
            _deployments(actor)
        with traffic_tab:
            _traffic(actor, window)
        with budgets_tab:
            _budgets(actor)
        with ledger_tab:
            _ledger(actor, window)
        with config_tab:
            _configuration(actor)
    except DomainError as exc:
        deps.show_error(exc)


if __name__ == "__main__":
    render()
