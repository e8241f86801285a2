"""Audit log: filter by actor, action, outcome and time; chart; verify the chain; CSV export."""

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from core.audit import service as audit
from core.audit.verify import verify
from core.auth.roles import Permission, has_permission
from core.errors import DomainError


def _filter_form(actor_names: list[str], actions: list[str]) -> audit.AuditFilter:
    with st.container(border=True):
        c1, c2, c3 = st.columns([2, 2, 1])
        actors = c1.multiselect("Actor", actor_names, key="audit_actors")
        chosen = c2.multiselect("Action", actions, key="audit_actions")
        outcomes = c3.multiselect("Outcome", list(audit.OUTCOMES), key="audit_outcomes")
        c4, c5, c6 = st.columns([2, 2, 1])
        today = deps.today()
        period = c4.date_input(
            "Period", (today - timedelta(days=7), today), max_value=today, key="audit_period"
        )
        text = c5.text_input("Target or details contain", max_chars=200, key="audit_text")
        limit = c6.number_input("Max rows", 10, 100_000, 1000, step=100, key="audit_limit")
    since = until = None
    if isinstance(period, tuple) and len(period) == 2:
        since, until = _day_start(period[0]), _day_start(period[1] + timedelta(days=1))
    elif isinstance(period, tuple) and len(period) == 1:
        since = _day_start(period[0])
    return audit.AuditFilter(
        actors=actors,
        actions=chosen,
        outcomes=outcomes,
        since=since,
        until=until,
        text=text,
        limit=int(limit),
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=deps.viewer_zone()).astimezone(UTC)


def render() -> None:
    actor = deps.page_actor(Permission.AUDIT_READ)
    st.title("Audit log")
    st.caption(
        "Append-only and hash-chained: every change and every refused call, with who, what "
        "and when."
    )
    try:
        actor_names, actions = audit.filter_choices(actor)
        flt = _filter_form(actor_names, actions)
        entries = audit.search(actor, flt)
    except DomainError as exc:
        deps.show_error(exc)
        return

    frame = pd.DataFrame(
        [
            {
                "#": e.seq,
                "Time": deps.local_time(e.ts),
                "Actor": e.actor,
                "Role": e.actor_role,
                "Action": e.action,
                "Target": e.target,
                "Outcome": e.outcome,
                "Details": e.summary,
            }
            for e in entries
        ],
        columns=["#", "Time", "Actor", "Role", "Action", "Target", "Outcome", "Details"],
    )
    st.write(
        f"{len(frame):,} entries" + (" (row limit reached)" if len(frame) >= flt.limit else "")
    )
    if frame.empty:
        st.info("No entries match these filters.")
    else:
        per_day = (
            pd.DataFrame(
                {
                    "day": [
                        e.ts.astimezone(deps.viewer_zone()).strftime("%Y-%m-%d") for e in entries
                    ],
                    "outcome": [e.outcome for e in entries],
                }
            )
            .value_counts()
            .rename("entries")
            .reset_index()
        )
        figure = px.bar(
            per_day,
            x="day",
            y="entries",
            color="outcome",
            color_discrete_map={"ok": "#2e7d32", "denied": "#c62828", "failed": "#ef6c00"},
        )
        figure.update_layout(xaxis_title=None, xaxis_type="category")
        widgets.chart(figure, height=220)
        st.dataframe(frame, hide_index=True, width="stretch")

    left, right = st.columns(2)
    with left:
        if has_permission(actor.role, Permission.AUDIT_EXPORT) and st.button(
            "Prepare CSV export", icon=":material/download:"
        ):
            try:
                csv_text, rows = audit.export_csv(actor, flt)
            except DomainError as exc:
                deps.show_error(exc)
            else:
                st.download_button(
                    f"Download {rows:,} rows (CSV)",
                    csv_text,
                    "audit_log.csv",
                    "text/csv",
                    icon=":material/file_download:",
                )
    with right:
        if has_permission(actor.role, Permission.AUDIT_VERIFY) and st.button(
            "Verify hash chain", icon=":material/verified:"
        ):
            try:
                report = verify(actor)
            except DomainError as exc:
                deps.show_error(exc)
            else:
                (st.success if report.ok else st.error)(report.describe())


if __name__ == "__main__":
    render()
