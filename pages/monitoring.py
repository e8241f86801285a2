"""Monitoring: data, prediction and embedding drift, and performance over time, per monitor.

A feature x window heatmap shows where drift is (1 = at the threshold), the drifted features of
a window are listed with their test, and the distribution of one feature in that window is laid
over the reference. Performance (MAE / RMSE, or accuracy / F1) is charted per window against the
reference and the alert limit. Alerts can be acknowledged; monitors created, tuned and run. All
numbers come from `core.mlops` (monitors, monitor_run, monitor_views)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from console import deps, widgets
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.errors import DomainError
from core.mlops import monitor_views, monitors
from core.mlops.monitor_run import run_monitor

FLASH_KEY = "monitoring_flash"
MONITOR_KEY = "monitoring_selected"
KIND_LABELS = {
    "data_drift": "Data drift",
    "prediction_drift": "Prediction drift",
    "performance": "Performance",
    "embedding_drift": "Embedding drift",
}


def render() -> None:
    actor = deps.page_actor(Permission.MLOPS_READ)
    st.title("Monitoring")
    st.caption(
        "Each monitor compares consecutive days or weeks with a reference window, feature by "
        "feature, with the tests Evidently picks by default (Kolmogorov-Smirnov or Wasserstein "
        "for numbers, chi-squared or Jensen-Shannon for categories, by reference size) and PSI "
        "beside them. A window drifts when its share of drifted features reaches the monitor's "
        "limit."
    )
    widgets.show_flash(FLASH_KEY)
    try:
        found = monitors.list_monitors(actor)
        can_manage = has_permission(actor.role, Permission.MLOPS_MONITOR)
        if not found:
            st.info("No monitors yet." + (" Create one below." if can_manage else ""))
        else:
            labels = {m.label: m for m in found}
            chosen = labels[st.selectbox("Monitor", list(labels), key=MONITOR_KEY)]
            _monitor(actor, chosen, can_manage)
        if can_manage:
            with st.expander("New monitor"):
                _new_monitor(actor)
    except DomainError as exc:
        deps.show_error(exc)


def _monitor(actor: Actor, monitor: Any, can_manage: bool) -> None:
    cols = st.columns(4)
    cols[0].metric("Windows checked", f"{monitor.windows_computed:,}")
    cols[1].metric("Open alerts", f"{monitor.open_alerts:,}")
    cols[2].metric(
        "Last window", monitor.last_window.strftime("%Y-%m-%d") if monitor.last_window else "none"
    )
    cols[3].metric(
        "Reference from",
        f"{monitor.reference_start:%Y-%m-%d}",
        help=f"The reference window runs to {monitor.reference_end:%Y-%m-%d} (exclusive).",
    )
    st.caption(
        f"Reference {monitor.reference_start:%Y-%m-%d} to {monitor.reference_end:%Y-%m-%d}; "
        f"{monitor.window}ly windows from there on."
    )
    if not monitor.enabled:
        st.warning("This monitor is disabled: `omni mlops monitors run --all` skips it.")
    results = monitor_views.results_frame(actor, monitor.id)
    if monitor.kind == "model":
        drift_tab, perf_tab, alert_tab, settings_tab = st.tabs(
            ["Drift", "Performance", "Alerts", "Settings"]
        )
        with drift_tab:
            _drift(actor, monitor, results)
        with perf_tab:
            _performance(monitor, results)
    else:
        drift_tab, alert_tab, settings_tab = st.tabs(["Embedding drift", "Alerts", "Settings"])
        with drift_tab:
            _embedding(actor, monitor, results)
    with alert_tab:
        _alerts(actor, monitor, can_manage)
    with settings_tab:
        _settings(actor, monitor, can_manage)


def _drift(actor: Actor, monitor: Any, results: pd.DataFrame) -> None:
    if results.empty:
        st.info("No window checked yet: run the monitor (Settings tab).")
        return
    heat = monitor_views.heatmap_frame(actor, monitor.id)
    drifted = results[results["dataset_drift"]]
    st.markdown(
        f"**{len(drifted)} of {len(results)} {monitor.window}s drifted** "
        f"(share of drifted features >= {monitor.drift_share:.0%})."
    )
    if not heat.empty:
        pivot = heat.pivot_table(
            index="column", columns="window_start", values="severity", aggfunc="max"
        )
        order = pivot.mean(axis=1).sort_values(ascending=False).index
        pivot = pivot.loc[order]
        figure = px.imshow(
            pivot.to_numpy(),
            x=[pd.Timestamp(c).strftime("%Y-%m-%d") for c in pivot.columns],
            y=list(pivot.index),
            color_continuous_scale=[(0, "#f1f8e9"), (0.2, "#fff59d"), (1, "#c62828")],
            zmin=0,
            zmax=5,
            aspect="auto",
            labels={"color": "severity", "x": "window", "y": "feature"},
        )
        widgets.chart(figure, height=max(240, 26 * len(pivot) + 80))
        st.caption(
            "Severity: 1 is the test's threshold; above 1 (orange to red) the feature drifted."
        )
    table = results[
        [
            "window_start",
            "rows",
            "drift_share",
            "dataset_drift",
            "drifted_features",
            "prediction_drift",
        ]
    ].copy()
    table["window_start"] = table["window_start"].map(lambda v: f"{v:%Y-%m-%d}")
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "window_start": "Window",
            "rows": "Rows",
            "drift_share": st.column_config.ProgressColumn(
                "Drifted share", min_value=0.0, max_value=1.0, format="percent"
            ),
            "dataset_drift": "Drift",
            "drifted_features": "Drifted features",
            "prediction_drift": "Prediction drift",
        },
    )
    widgets.csv_download(table, "Download CSV", f"{monitor.name}-drift.csv")
    _window(actor, monitor, results)


def _window(actor: Actor, monitor: Any, results: pd.DataFrame) -> None:
    starts = list(results["window_start"])
    drifted = list(results.loc[results["dataset_drift"], "window_start"])
    default = starts.index(drifted[-1]) if drifted else len(starts) - 1
    start = st.selectbox(
        "Window", starts, index=default, format_func=lambda v: f"{v:%Y-%m-%d}", key="mon_window"
    )
    detail = monitor_views.window_detail(actor, monitor.id, start)
    rows = [c for c in detail.columns if not c.get("missing")]
    missing = [c for c in detail.columns if c.get("missing")]
    frame = pd.DataFrame(
        {
            "Feature": [c["column"] for c in rows],
            "Kind": [c.get("kind", "") for c in rows],
            "Test": [c.get("test", "") for c in rows],
            "Score": [c.get("score") for c in rows],
            "Threshold": [c.get("threshold") for c in rows],
            "Drifted": [bool(c.get("drifted")) for c in rows],
            "PSI": [c.get("psi") for c in rows],
            "Note": [c.get("note", "") for c in rows],
        }
    )
    st.markdown(
        f"**{start:%Y-%m-%d}**: {detail.rows:,} rows against {detail.reference_rows:,} in the "
        f"reference; {detail.drift_share:.0%} of features drifted."
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "Score": st.column_config.NumberColumn(format="%.4g"),
            "Threshold": st.column_config.NumberColumn(format="%.3g"),
            "PSI": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    for column in missing:
        st.warning(f"{column['column']}: {column['note']} (not judged).")
    choices = [c["column"] for c in rows] + ["prediction"]
    feature = st.selectbox("Distribution of", choices, key="mon_feature")
    overlay = monitor_views.overlay(actor, monitor.id, start, feature)
    figure = go.Figure(
        [
            go.Bar(x=overlay["bucket"], y=overlay["reference_share"], name="reference"),
            go.Bar(x=overlay["bucket"], y=overlay["current_share"], name=f"{start:%Y-%m-%d}"),
        ]
    )
    figure.update_layout(barmode="overlay", yaxis_tickformat=".0%", legend_orientation="h")
    figure.update_traces(opacity=0.6)
    widgets.chart(figure, height=280)


def _performance(monitor: Any, results: pd.DataFrame) -> None:
    metrics = [m for m in ("mae", "rmse", "accuracy", "f1") if m in results.columns]
    if results.empty or not metrics:
        st.info("No actuals in the checked windows yet: performance appears once they arrive.")
        return
    long = results.melt(
        id_vars=["window_start"], value_vars=metrics, var_name="metric", value_name="value"
    ).dropna()
    figure = px.line(long, x="window_start", y="value", color="metric", markers=True)
    for metric in metrics:
        reference = results.get(f"reference_{metric}")
        if reference is not None and reference.notna().any():
            figure.add_hline(
                y=float(reference.dropna().iloc[0]),
                line_dash="dot",
                annotation_text=f"reference window {metric}",
            )
    if monitor.performance_threshold is not None:
        figure.add_hline(
            y=monitor.performance_threshold,
            line_color="#c62828",
            annotation_text="alert limit",
        )
    widgets.chart(figure, height=300)
    st.caption(f"Labelled rows per window: {int(results['labelled_rows'].sum()):,} in all.")


def _embedding(actor: Actor, monitor: Any, results: pd.DataFrame) -> None:
    if results.empty:
        st.info("No window checked yet: run the monitor (Settings tab).")
        return
    heat = monitor_views.heatmap_frame(actor, monitor.id)
    figure = px.bar(
        heat,
        x="window_start",
        y="severity",
        color="drifted",
        color_discrete_map={True: "#c62828", False: "#90a4ae"},
        labels={"severity": "severity (1 = threshold)", "window_start": monitor.window},
    )
    figure.add_hline(y=1, line_dash="dot")
    widgets.chart(figure)
    st.caption(
        "MiniLM embeddings of the questions asked in each window against those of the "
        "reference, by a maximum mean discrepancy test with a permutation p-value."
    )
    table = heat[["window_start", "score", "drifted"]].rename(
        columns={"window_start": "Window", "score": "p-value", "drifted": "Drifted"}
    )
    st.dataframe(table, hide_index=True, width="stretch")


def _alerts(actor: Actor, monitor: Any, can_manage: bool) -> None:
    show_all = st.toggle("Include acknowledged", key=f"mon_all_alerts_{monitor.id}")
    alerts = monitor_views.list_alerts(actor, open_only=not show_all, monitor_id=monitor.id)
    if not alerts:
        st.success("No open alerts." if not show_all else "No alerts.")
        return
    frame = pd.DataFrame(
        {
            "id": [a.id for a in alerts],
            "Window": [f"{a.window_start:%Y-%m-%d}" for a in alerts],
            "Kind": [KIND_LABELS.get(a.kind, a.kind) for a in alerts],
            "Message": [a.message for a in alerts],
            "Webhook": [a.delivery for a in alerts],
            "Acknowledged by": [a.acknowledged_by or "" for a in alerts],
        }
    )
    if not can_manage:
        st.dataframe(frame.drop(columns=["id"]), hide_index=True, width="stretch")
        return
    frame.insert(0, "Acknowledge", False)
    edited = st.data_editor(
        frame,
        hide_index=True,
        width="stretch",
        disabled=[c for c in frame.columns if c != "Acknowledge"],
        column_config={"id": None},
        key=f"mon_alerts_{monitor.id}_{len(alerts)}_{show_all}",  # fresh edits after a change
    )
    picked = [int(i) for i in edited.loc[edited["Acknowledge"], "id"]]
    if st.button(f"Acknowledge {len(picked)} selected", disabled=not picked):
        try:
            count = monitor_views.acknowledge(actor, picked)
        except DomainError as exc:
            deps.show_error(exc)
        else:
            widgets.flash(FLASH_KEY, f"Acknowledged {count} alerts.")
            st.rerun()


def _settings(actor: Actor, monitor: Any, can_manage: bool) -> None:
    st.markdown(
        f"**{monitor.kind} monitor** of `{monitor.target}`, {monitor.window}ly windows, "
        f"features: {', '.join(monitor.features)}."
    )
    st.markdown(
        f"Alert when at least {monitor.drift_share:.0%} of features drift"
        + (
            f"; performance limit {monitor.performance_threshold:g}"
            if monitor.performance_threshold is not None
            else ""
        )
        + (f"; alerts are posted to {monitor.webhook_url}" if monitor.webhook_url else "")
        + "."
    )
    if monitor.thresholds or monitor.tests:
        st.json({"thresholds": monitor.thresholds, "tests": monitor.tests})
    if not can_manage:
        return
    run, recompute = st.columns(2)
    if run.button("Run now", type="primary", key="mon_run"):
        _run(actor, monitor.id, recompute=False)
    if recompute.button("Recheck every window", key="mon_recompute"):
        _run(actor, monitor.id, recompute=True)
    with st.form(f"mon_edit_{monitor.id}"):
        st.markdown("**Rules** (changing them rechecks every window on the next run)")
        share = st.slider("Drifted-feature share for an alert", 0.05, 1.0, monitor.drift_share)
        limit = st.number_input(
            "Performance limit (MAE above, or F1 below; 0 for none)",
            min_value=0.0,
            value=float(monitor.performance_threshold or 0.0),
        )
        thresholds = st.text_input(
            "Per-feature thresholds",
            value=", ".join(f"{k}={v:g}" for k, v in monitor.thresholds.items()),
            help="feature=value pairs, e.g. temp=0.2, hum=0.15 (distance tests: drift at or "
            "above; p-value tests: drift below)",
        )
        webhook = st.text_input("Alert webhook (http or https URL)", value=monitor.webhook_url)
        enabled = st.checkbox("Enabled", value=monitor.enabled)
        if st.form_submit_button("Save"):
            try:
                monitors.update_monitor(
                    actor,
                    monitor.id,
                    drift_share=share,
                    performance_threshold=limit or None,
                    thresholds=_pairs(thresholds),
                    webhook_url=webhook,
                    enabled=enabled,
                )
            except DomainError as exc:
                deps.show_error(exc)
            else:
                widgets.flash(FLASH_KEY, "Monitor saved; run it to recheck the windows.")
                st.rerun()


def _pairs(text: str) -> dict[str, float]:
    from core.errors import ValidationError

    pairs: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            pairs[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValidationError(f"{part!r} is not feature=number (e.g. temp=0.2).")
    return pairs


def _run(actor: Actor, monitor_id: int, *, recompute: bool) -> None:
    try:
        with st.spinner("Checking windows..."):
            report = run_monitor(actor, monitor_id, recompute=recompute)
    except DomainError as exc:
        deps.show_error(exc)
    else:
        widgets.flash(FLASH_KEY, report.summary + ".")
        st.rerun()


def _new_monitor(actor: Actor) -> None:
    with st.form("mon_new"):
        kind = st.radio(
            "Watch",
            ["model", "embeddings"],
            format_func=lambda k: (
                "a registered model's predictions"
                if k == "model"
                else "knowledge-base questions (embeddings)"
            ),
            horizontal=True,
        )
        name = st.text_input("Monitor name")
        target = st.text_input(
            "Registered model (or collection name, * for all, for embeddings)",
            help="features come from the model's signature unless listed below",
        )
        features = st.text_input("Features (comma-separated; empty: from the signature)")
        start, end = st.columns(2)
        ref_start = start.date_input("Reference from", value=date(2011, 1, 1))
        ref_end = end.date_input("Reference to (exclusive)", value=date(2012, 1, 1))
        window = st.radio("Window", list(monitors.WINDOWS), index=1, horizontal=True)
        share = st.slider("Drifted-feature share for an alert", 0.05, 1.0, 0.5)
        if st.form_submit_button("Create monitor", type="primary"):
            try:
                created = monitors.create_monitor(
                    actor,
                    name=name,
                    kind=kind,
                    target=target.strip(),
                    reference_start=datetime.combine(ref_start, time(), UTC),
                    reference_end=datetime.combine(ref_end, time(), UTC),
                    window=window,
                    features=[f.strip() for f in features.split(",") if f.strip()],
                    drift_share=share,
                    tracking=deps.mlflow_tracking() if kind == "model" else None,
                )
            except DomainError as exc:
                deps.show_error(exc)
            else:
                st.session_state[MONITOR_KEY] = created.label
                widgets.flash(FLASH_KEY, f"Monitor {created.name} created: run it from Settings.")
                st.rerun()


if __name__ == "__main__":
    render()
