"""Home: the few numbers the signed-in role checks first."""

import streamlit as st

from console import deps
from core.errors import DomainError


def render() -> None:
    actor = deps.page_actor()
    st.title("Home")
    st.caption(f"Signed in as {actor.username} · {actor.role.label}")
    try:
        cards = deps.home_metrics(actor)
    except DomainError as exc:
        deps.show_error(exc)
        return
    for title, metrics in cards:
        st.subheader(title)
        columns = st.columns(max(len(metrics), 1))
        for column, metric in zip(columns, metrics, strict=False):
            column.metric(metric.label, metric.value, help=metric.help or None, border=True)


if __name__ == "__main__":
    render()
