"""Organisations: the tenant's customer organisations, searchable."""

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from core.auth.roles import Permission
from core.errors import DomainError
from core.orgs import service as orgs
from core.orgs.countries import countries


def render() -> None:
    actor = deps.page_actor(Permission.ORGS_READ)
    st.title("Organisations")
    st.caption("The customer organisations that consent, usage and billing belong to.")
    c1, c2, c3 = st.columns([3, 1, 1])
    text = c1.text_input("Search name or domain", max_chars=100, key="org_search")
    plan = c2.selectbox("Plan", ["all", *orgs.PLANS], key="org_plan")
    codes = sorted(countries())
    country = c3.selectbox(
        "Country",
        ["all", *codes],
        key="org_country",
        format_func=lambda c: c if c == "all" else f"{c} · {countries()[c].name}",
    )
    try:
        rows = orgs.search(
            actor,
            text,
            plan=None if plan == "all" else plan,
            country=None if country == "all" else country,
            limit=5000,
        )
    except DomainError as exc:
        deps.show_error(exc)
        return
    frame = pd.DataFrame(
        [
            {
                "Name": o.name,
                "Country": o.country_name,
                "EU": o.eu,
                "Plan": o.plan,
                "Industry": o.industry,
                "Employees": o.employees,
                "Domain": o.domain,
                "Signed up": deps.local_time(o.signed_up_at, "%Y-%m-%d"),
            }
            for o in rows
        ]
    )
    st.write(f"{len(frame):,} organisations")
    if frame.empty:
        st.info("No organisation matches.")
        return
    by_country = frame.groupby(["Country", "Plan"]).size().rename("organisations").reset_index()
    figure = px.bar(
        by_country,
        x="Country",
        y="organisations",
        color="Plan",
        category_orders={"Plan": list(orgs.PLANS)},
    )
    figure.update_layout(xaxis={"categoryorder": "total descending"})
    widgets.chart(figure, height=260)
    st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button(
        "Download CSV",
        frame.to_csv(index=False),
        "organisations.csv",
        "text/csv",
        icon=":material/file_download:",
    )


if __name__ == "__main__":
    render()
