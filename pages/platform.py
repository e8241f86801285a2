"""Platform: which backend serves each concern, and whether it answers."""

import pandas as pd
import streamlit as st

from console import deps, widgets
from core.auth.roles import Permission
from core.errors import DomainError


def render() -> None:
    actor = deps.page_actor(Permission.PLATFORM_READ)
    st.title("Platform")
    st.caption(
        "Active backends (embedded default or production, per the settings) and their health."
    )
    if st.button("Re-check", icon=":material/refresh:"):
        deps.platform_status.clear()
    try:
        statuses = deps.platform_status(actor)
    except DomainError as exc:
        deps.show_error(exc)
        return
    frame = pd.DataFrame(
        [
            {
                "Concern": s.concern,
                "Backend": s.backend,
                "State": s.state,
                "Latency (ms)": round(s.latency_ms, 1) if s.latency_ms is not None else None,
                "Detail": s.detail,
            }
            for s in statuses
        ]
    )
    widgets.state_table(frame, "State")
    with st.expander("Effective settings (secrets masked)"):
        st.json(deps.settings().masked())


if __name__ == "__main__":
    render()
