"""Retention: policies per data category, a dry run of the next enforcement, enforcement with
its report, and past runs."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.errors import DomainError
from core.privacy import retention

RESULT_KEY = "retention_result"
FLASH_KEY = "retention_flash"
REVIEWED_KEY = "retention_reviewed_policies"


def render() -> None:
    actor = deps.page_actor(Permission.PRIVACY_READ)
    st.title("Retention")
    st.caption(
        "How long each category of personal data is kept and what happens after. The dry run "
        "shows what the next enforcement would touch; enforcement also runs from the command "
        "line (`omni privacy retention enforce`) for a scheduler."
    )
    widgets.show_flash(FLASH_KEY)
    try:
        _policies(actor)
        _dry_run_and_enforce(actor)
        _runs(actor)
    except DomainError as exc:
        deps.show_error(exc)


def _policies(actor: Actor) -> None:
    policies = retention.list_policies(actor)
    st.subheader("Policies")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Category": p.label,
                    "Key": p.category,
                    "Keep (days)": p.duration_days,
                    "Then": p.action if p.duration_days else "",
                    "Legal basis": p.legal_basis
                    if p.duration_days
                    else f"(suggested) {p.legal_basis}",
                    "Enabled": p.enabled,
                    "Changed by": p.updated_by,
                    "Changed": deps.local_time(p.updated_at, "%Y-%m-%d"),
                }
                for p in policies
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    if not has_permission(actor.role, Permission.RETENTION_MANAGE):
        return
    with st.form("retention_policy"):
        st.write("**Set a policy**")
        by_key = {p.category: p for p in policies}
        c1, c2, c3 = st.columns([2, 1, 1])
        key = c1.selectbox("Category", list(by_key), format_func=lambda k: by_key[k].label)
        days = c2.number_input("Keep for (days)", 1, 36_500, 365)
        action = c3.selectbox("Then", retention.ACTIONS)
        basis = st.text_input("Legal basis or reason", max_chars=300)
        enabled = st.checkbox("Enabled", value=True)
        if st.form_submit_button("Save policy"):
            retention.set_policy(
                actor,
                key,
                duration_days=int(days),
                action=action,
                legal_basis=basis,
                enabled=enabled,
            )
            widgets.flash(FLASH_KEY, f"Saved the policy for {by_key[key].label}.")
            st.rerun()  # so the table above shows the change


def _dry_run_and_enforce(actor: Actor) -> None:
    st.subheader("Next enforcement (dry run)")
    plan = retention.dry_run(actor)
    frame = pd.DataFrame(
        [
            {
                "Category": line.label,
                "Action": line.action,
                "Older than": deps.local_time(line.cutoff, "%Y-%m-%d"),
                "Rows or files": line.rows,
                "Note": line.note,
            }
            for line in plan
        ]
    )
    due = frame[frame["Rows or files"] > 0]
    if not due.empty:
        widgets.chart(px.bar(due, x="Category", y="Rows or files", color="Action"), height=220)
    st.dataframe(frame, hide_index=True, width="stretch")
    total = int(frame["Rows or files"].sum())
    if not has_permission(actor.role, Permission.RETENTION_MANAGE):
        return
    # The policies behind the dry run the person last saw: enforcing refuses if they changed.
    reviewed = st.session_state.get(REVIEWED_KEY)
    st.session_state[REVIEWED_KEY] = retention.current_token(actor)
    confirm = st.checkbox(f"I have reviewed the dry run ({total:,} rows or files)", key="ret_ok")
    if st.button("Enforce retention now", type="primary", disabled=not confirm):
        with st.spinner("Enforcing retention..."):
            st.session_state[RESULT_KEY] = retention.enforce(actor, reviewed_token=reviewed)
        st.session_state.pop("ret_ok", None)  # a new dry run needs a new review
        st.rerun()
    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        message = f"Run #{result.id}: {result.status}, {result.rows:,} rows or files changed."
        (st.success if result.status == "ok" else st.error)(message)
        st.dataframe(_lines(result), hide_index=True)


def _lines(run: retention.RunInfo) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Category": line.category,
                "Action": line.action,
                "Rows": line.rows,
                "Status": line.status,
                "Error": line.error,
            }
            for line in run.lines
        ]
    )


def _runs(actor: Actor) -> None:
    runs = retention.list_runs(actor)
    st.subheader("Past runs")
    if not runs:
        st.info("Retention has not been enforced yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Run": r.id,
                    "Started": deps.local_time(r.started_at),
                    "By": r.actor,
                    "Status": r.status,
                    "Rows or files": r.rows,
                    "Categories": ", ".join(f"{x.category}: {x.rows}" for x in r.lines),
                }
                for r in runs
            ]
        ),
        hide_index=True,
        width="stretch",
    )


if __name__ == "__main__":
    render()
