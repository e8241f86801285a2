"""Small display helpers shared by the pages."""

from __future__ import annotations

from typing import Any

import streamlit as st


def chart(figure: Any, height: int = 240) -> None:
    """A plotly figure, tight margins, full width: the way every page shows a chart."""
    figure.update_layout(height=height, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(figure, width="stretch")
