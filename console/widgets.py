"""Small display helpers shared by the pages."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

import streamlit as st

from core.clock import as_zone
from core.windows import Window, latest_window


def chart(figure: Any, height: int = 240) -> None:
    """A plotly figure, tight margins, full width: the way every page shows a chart."""
    figure.update_layout(height=height, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(figure, width="stretch")


_STATE_COLOURS = {
    "ok": "#2e7d32",
    "closed": "#2e7d32",
    "yes": "#2e7d32",
    "degraded": "#ef6c00",
    "half-open": "#ef6c00",
    "down": "#c62828",
    "open": "#c62828",
    "off": "#757575",
    "done": "#2e7d32",
    "pending": "#757575",
    "failed": "#c62828",
}


def state_table(frame: Any, column: str) -> None:
    """A table whose `column` holds states (ok, down, open...), coloured so problems stand out.
    Colour, not emoji: emoji are missing from some browsers' table fonts."""

    def colour(value: object) -> str:
        hue = _STATE_COLOURS.get(str(value).split(":")[0].strip().lower())
        return f"color: {hue}; font-weight: 600" if hue else ""

    st.dataframe(frame.style.map(colour, subset=[column]), hide_index=True, width="stretch")


def budget_bars(budgets: Any) -> None:
    """One progress bar per budget: spent this month against its limit."""
    from core.money import format_usd

    for b in budgets:
        share = min(b.spent_micros / b.limit_micros, 1.0) if b.limit_micros else 1.0
        st.progress(
            share,
            text=f"{b.scope} {b.subject}: {format_usd(b.spent_micros)} of "
            f"{format_usd(b.limit_micros)} this month",
        )


def flash(key: str, message: str, kind: str = "success") -> None:
    """Keep a message for the next run (the page calls st.rerun after a change); `show_flash`
    shows it once at the top."""
    st.session_state[key] = (kind, message)


def show_flash(key: str) -> None:
    stored = st.session_state.pop(key, None)
    if stored is None:
        return
    kind, message = stored if isinstance(stored, tuple) else ("success", stored)
    {"success": st.success, "warning": st.warning, "error": st.error}.get(kind, st.info)(message)


def csv_download(frame: Any, label: str, file_name: str, key: str | None = None) -> None:
    """A CSV download of a table, with formula-like cells neutralised for spreadsheets."""
    from core.audit.service import neutralise_formula

    safe = frame.map(lambda v: neutralise_formula(v) if isinstance(v, str) else v)
    st.download_button(
        label, safe.to_csv(index=False).encode("utf-8"), file_name, "text/csv", key=key
    )


def data_window(
    key: str,
    default: Window,
    latest: datetime | None,
    *,
    what: str,
    period: str,
    zone: tzinfo | None = None,
) -> Window | None:
    """The window a page shows: `default` (a core.windows.Window), or, when it holds no data
    and older data exists, a notice that says so with a button offering the window of the same
    length that ends with the newest data (`latest`: its instant). Returns the window to show,
    or None when the page should stop after the notice (nothing to chart but zeros).

    `what` names the data ("LLM traffic"), `period` the default ("the last 30 days"). The choice
    is kept per `key`; pass a key that changes with the period so a new period starts afresh."""
    fallback = latest_window(default, latest)
    if fallback is None or latest is None:
        return default
    shown = fallback.describe(zone)
    chosen = f"{key}__latest"
    if st.session_state.get(chosen):
        offer(
            f"No {what} in {period}: showing the latest, {shown}.",
            "Back to " + period,
            f"{key}__back",
            {chosen: False},
            primary=False,
        )
        return fallback
    offer(
        f"No {what} in {period}. The latest is from "
        f"{latest.astimezone(as_zone(zone)):%Y-%m-%d %H:%M}.",
        f"Show {shown}",
        f"{key}__show",
        {chosen: True},
    )
    return None


def offer(
    message: str, label: str, key: str, state: dict[str, Any], *, primary: bool = True
) -> None:
    """A notice with a button under it that puts `state` into the session (before the rerun
    draws the widgets it keys, which is why it is a callback)."""
    # the button under the notice, not beside it: its label names dates and must not be cut
    st.info(message, icon=":material/history:")
    st.button(
        label,
        key=key,
        type="primary" if primary else "secondary",
        on_click=lambda: st.session_state.update(state),
    )
