"""Experiments: A/B tests between model versions, prompts or LLM providers.

The list shows each experiment's progress toward its planned sample size and the current advice.
An experiment's detail has the variants with their rate or mean and interval, each treatment's
effect against the control (fixed-horizon test and, for sequential experiments, the always-valid
test that makes peeking safe), the cumulative effect day by day, a lookup of the variant a unit
gets, and for roles that run experiments: observations imported from CSV and stopping with a
decision. New experiments preview their sample size as the inputs change. All statistics come
from `core.mlops` (experiments, ab_stats)."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from console import deps, widgets
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.errors import DomainError, ValidationError
from core.mlops import experiments
from core.mlops.ab_stats import plan_sample_size
from core.mlops.experiments import KINDS, METRIC_KINDS, ExperimentResults, ExperimentView

FLASH_KEY = "experiments_flash"
SELECTED_KEY = "exp_selected"
PENDING_KEY = "exp_select_next"  # the selection to apply on the next run (after creating one)
VARIANTS_KEY = "exp_new_variants"
ADVICE = {
    "ship_b": "Ship it",
    "keep_a": "Keep the control",
    "no_difference": "No difference",
    "keep_running": "Keep running",
}
VARIANT_COLUMNS = ["Key", "Label", "Weight"]
DEFAULT_VARIANTS = pd.DataFrame(
    [
        {"Key": "control", "Label": "Current version", "Weight": 50.0},
        {"Key": "treatment", "Label": "New version", "Weight": 50.0},
    ],
    columns=VARIANT_COLUMNS,
)
NEW_FIELDS = ("exp_new_key", "exp_new_name", "exp_new_metric", "exp_new_description")


def render() -> None:
    actor = deps.page_actor(Permission.MLOPS_READ)
    st.title("Experiments")
    st.caption(
        "A/B tests between model versions, prompts or LLM providers. Units (users, sessions, "
        "requests) are split by hashing their id, so the same unit always gets the same variant. "
        "The sample size is fixed when an experiment starts; a winner is only declared once it "
        "is reached, unless the experiment is sequential, whose always-valid test may be looked "
        "at any time."
    )
    widgets.show_flash(FLASH_KEY)
    manage = has_permission(actor.role, Permission.MLOPS_EXPERIMENT)
    try:
        found = experiments.list_experiments(actor)
        list_tab, new_tab = st.tabs(["Experiments", "New experiment"])
        with list_tab:
            _list(actor, found, manage)
        with new_tab:
            if manage:
                _new_experiment(actor)
            else:
                st.info("Your role can read experiments but not start, feed or stop them.")
    except DomainError as exc:
        deps.show_error(exc)


# --- formatting ---------------------------------------------------------------------------------


def _value(view: ExperimentView, value: float | None) -> str:
    """A rate as a percentage, a mean in the metric's units."""
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.1%}" if view.metric_kind == "proportion" else f"{value:,.4g}"


def _effect(view: ExperimentView, value: float | None) -> str:
    """A difference: percentage points for rates."""
    if value is None or not math.isfinite(value):
        return ""
    if view.metric_kind == "proportion":
        return f"{100 * value:+.2f} pp"
    return f"{value:+,.4g}"


def _span(view: ExperimentView, low: float, high: float) -> str:
    return f"{_effect(view, low)} to {_effect(view, high)}"


def _p(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def _callout(result: ExperimentResults) -> None:
    advice = result.recommendation
    text = f"**{ADVICE.get(advice.code, advice.code)}.** {advice.text}"
    if result.experiment.status == "stopped":
        text += f"  \nStopped with the decision: {result.experiment.decision}"
    show = {"ship_b": st.success, "keep_a": st.warning}.get(advice.code, st.info)
    show(text, icon=":material/lightbulb:")


# --- the list and one experiment ----------------------------------------------------------------


def _list(actor: Actor, found: list[ExperimentResults], manage: bool) -> None:
    if not found:
        st.info("No experiments yet." + (" Start one in the next tab." if manage else ""))
        return
    frame = pd.DataFrame(
        [
            {
                "Key": r.experiment.key,
                "Name": r.experiment.name,
                "Kind": KINDS.get(r.experiment.kind, r.experiment.kind),
                "Metric": r.experiment.metric_name,
                "Status": r.experiment.status,
                "Units": r.observations,
                "Sample size / variant": r.experiment.sample_size,
                "Progress": r.progress,
                "Sequential": r.experiment.sequential,
                "Recommendation": ADVICE.get(r.recommendation.code, r.recommendation.code),
                "Created": deps.local_time(r.experiment.created_at, "%Y-%m-%d"),
            }
            for r in found
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "Progress": st.column_config.ProgressColumn(
                "Progress", min_value=0.0, max_value=1.0, format="percent"
            )
        },
    )
    widgets.csv_download(frame, "Download CSV", "experiments.csv", key="exp_list_csv")
    by_key = {r.experiment.key: r for r in found}
    if st.session_state.get(PENDING_KEY) in by_key:
        st.session_state[SELECTED_KEY] = st.session_state.pop(PENDING_KEY)
    key = st.selectbox(
        "Experiment",
        list(by_key),
        format_func=lambda k: f"{by_key[k].experiment.name} ({k})",
        key=SELECTED_KEY,
    )
    _detail(actor, by_key[key], manage)


def _detail(actor: Actor, result: ExperimentResults, manage: bool) -> None:
    view = result.experiment
    st.subheader(view.name)
    direction = "higher is better" if view.higher_is_better else "lower is better"
    st.caption(
        f"{KINDS.get(view.kind, view.kind)} · metric **{view.metric_name}** ({view.metric_kind}, "
        f"{direction}) · baseline {_value(view, view.baseline)}, minimum detectable effect "
        f"{_effect(view, view.mde)} · alpha {view.alpha:g}, power {view.power:g}"
        + (" · sequential" if view.sequential else "")
        + (f"  \n{view.description}" if view.description else "")
    )
    _callout(result)
    smallest = min(v.n for v in result.variants)
    st.progress(
        result.progress,
        text=f"{smallest:,} of {view.sample_size:,} units in the smallest variant "
        f"({result.progress:.0%} of the planned sample size)",
    )
    first = result.comparisons[0]
    cols = st.columns(4)
    cols[0].metric("Units", f"{result.observations:,}")
    cols[1].metric("Effect", _effect(view, first.fixed.effect) if first.fixed else "n/a")
    cols[2].metric("p-value", _p(first.fixed.p_value) if first.fixed else "n/a")
    if first.sequential is not None:
        cols[3].metric(
            "Always-valid p",
            _p(first.sequential.p_value) if first.sequential.looks else "n/a",
            help="From the mixture SPRT: valid however often you look.",
        )
    else:
        cols[3].metric("Status", view.status)
    _variants(view, result)
    _comparisons(view, result)
    _lift_chart(actor, view)
    _lookup(actor, view)
    if manage and view.status == "running":
        _import(actor, view)
        _stop(actor, view)


def _variants(view: ExperimentView, result: ExperimentResults) -> None:
    what = "Rate" if view.metric_kind == "proportion" else "Mean"
    level = f"{1 - view.alpha:.0%}"
    frame = pd.DataFrame(
        [
            {
                "Variant": v.key,
                "Label": v.label + (" (control)" if i == 0 else ""),
                "Traffic": f"{v.weight:.0%}",
                "Units": v.n,
                what: _value(view, v.mean),
                f"{level} CI": f"{_value(view, v.ci_low)} to {_value(view, v.ci_high)}"
                if v.n
                else "",
            }
            for i, v in enumerate(result.variants)
        ]
    )
    st.write("**Variants**")
    st.dataframe(frame, hide_index=True, width="stretch")
    widgets.csv_download(frame, "Download CSV", f"{view.key}-variants.csv", key="exp_var_csv")


def _comparisons(view: ExperimentView, result: ExperimentResults) -> None:
    st.write(f"**Effect against {view.variants[0].label}**")
    rows, figure = [], go.Figure()
    scale = 100.0 if view.metric_kind == "proportion" else 1.0
    for c in result.comparisons:
        fixed, seq = c.fixed, c.sequential if c.sequential and c.sequential.looks else None
        rows.append(
            {
                "Variant": c.variant,
                "Effect": _effect(view, fixed.effect) if fixed else "",
                "CI": _span(view, fixed.ci_low, fixed.ci_high) if fixed else "",
                "Relative lift": f"{fixed.relative_lift:+.1%}"
                if fixed and fixed.relative_lift is not None
                else "",
                "p-value": _p(fixed.p_value) if fixed else "",
                "Test": fixed.method if fixed else "too few units",
                "Always-valid p": _p(seq.p_value) if seq else "",
                "Confidence sequence": _span(view, seq.ci_low, seq.ci_high) if seq else "",
                "Advice": ADVICE.get(c.recommendation.code, c.recommendation.code),
            }
        )
        if fixed:
            bounds = (fixed.effect, fixed.ci_low, fixed.ci_high)
            _interval(figure, f"{c.label}: CI", [scale * b for b in bounds])
        if seq:
            bounds = (seq.effect, seq.ci_low, seq.ci_high)
            _interval(figure, f"{c.label}: sequence", [scale * b for b in bounds])
    frame = pd.DataFrame(rows)
    if not view.sequential:
        frame = frame.drop(columns=["Always-valid p", "Confidence sequence"])
    st.dataframe(frame, hide_index=True, width="stretch")
    if figure.data:
        unit = "percentage points" if view.metric_kind == "proportion" else view.metric_name
        figure.add_vline(x=0, line_dash="dot", line_color="grey")
        figure.update_layout(xaxis_title=f"effect on {view.metric_name} ({unit})")
        widgets.chart(figure, height=120 + 40 * len(figure.data))
        st.caption(
            "Dots: the estimate; bars: the interval (the confidence sequence is wider: it holds "
            "at every look). An interval clear of the dotted zero line is significant."
        )


def _interval(figure: go.Figure, name: str, bounds: list[float]) -> None:
    """One estimate with its interval as a dot and horizontal error bar."""
    mid, low, high = bounds
    error = {"type": "data", "symmetric": False, "array": [high - mid], "arrayminus": [mid - low]}
    figure.add_trace(
        go.Scatter(x=[mid], y=[name], mode="markers", error_x=error, name=name, showlegend=False)
    )


def _lift_chart(actor: Actor, view: ExperimentView) -> None:
    lift = experiments.lift_over_time(actor, view.key)
    if lift.empty:
        st.caption("No observations yet.")
        return
    st.write("**Cumulative effect by day**")
    scale = 100.0 if view.metric_kind == "proportion" else 1.0
    figure = go.Figure()
    for variant, part in lift.groupby("variant", sort=False):
        days = [str(d) for d in part["day"]]
        bands = [("ci", "CI")] + ([("seq_ci", "confidence sequence")] if view.sequential else [])
        for column, name in bands:
            upper = list(part[f"{column}_high"] * scale)
            lower = list(part[f"{column}_low"] * scale)
            figure.add_trace(
                go.Scatter(
                    x=days + days[::-1],
                    y=upper + lower[::-1],
                    fill="toself",
                    opacity=0.25 if column == "ci" else 0.12,
                    line={"width": 0},
                    name=f"{variant}: {name}",
                )
            )
        figure.add_trace(
            go.Scatter(x=days, y=list(part["effect"] * scale), mode="lines+markers", name=variant)
        )
    figure.add_hline(y=0, line_dash="dot", line_color="grey")
    figure.update_layout(
        yaxis_title="effect (pp)" if scale == 100 else f"effect ({view.metric_name})",
        legend={"orientation": "h"},
    )
    widgets.chart(figure, height=280)
    st.caption(
        "Each day shows the effect on all units up to its end. The fixed-horizon interval is "
        "only trustworthy at the planned sample size; the confidence sequence holds at every day."
    )


# --- actions ------------------------------------------------------------------------------------


def _lookup(actor: Actor, view: ExperimentView) -> None:
    unit = st.text_input(
        "Which variant gets unit...",
        max_chars=128,
        placeholder="a user, session or request id",
        key="exp_lookup_unit",
    )
    if unit.strip():
        try:
            variant = experiments.assign_unit(actor, view.key, unit)
        except DomainError as exc:
            deps.show_error(exc)
        else:
            label = next(v.label for v in view.variants if v.key == variant)
            st.markdown(f"Unit `{unit.strip()}` gets **{variant}** ({label}).")


def _import(actor: Actor, view: ExperimentView) -> None:
    with st.expander("Import observations (CSV)"):
        st.caption(
            "Columns unit_id, value and optionally ts (ISO 8601 with a time zone; now if empty). "
            + (
                "value is 1 or 0 for this proportion metric. "
                if view.metric_kind == "proportion"
                else ""
            )
            + "Each unit is filed under the variant its hash gives; a unit counts once. All rows "
            "or none are recorded."
        )
        upload = st.file_uploader("Observations CSV", type=["csv"], key="exp_import_file")
        if st.button("Import observations", disabled=upload is None, key="exp_import_button"):
            assert upload is not None
            try:
                report = experiments.import_observations_csv(actor, view.key, upload.getvalue())
            except DomainError as exc:
                deps.show_error(exc)
                return
            counts = ", ".join(f"{k}: {n:,}" for k, n in report.by_variant.items())
            widgets.flash(FLASH_KEY, f"Recorded {report.rows:,} observations ({counts}).")
            st.rerun()


def _stop(actor: Actor, view: ExperimentView) -> None:
    with st.expander("Stop the experiment"):
        st.caption("Stopping freezes the data. Write down what was decided and why.")
        decision = st.text_input(
            "Decision", max_chars=500, placeholder="e.g. ship v2 to everyone", key="exp_stop_text"
        )
        if st.button("Stop experiment", key="exp_stop_button"):
            try:
                experiments.stop_experiment(actor, view.key, decision)
            except DomainError as exc:
                deps.show_error(exc)
                return
            st.session_state.pop("exp_stop_text", None)
            widgets.flash(FLASH_KEY, f"Experiment {view.key} stopped.")
            st.rerun()


def _variant_rows(table: object) -> list[tuple[str, str, float]]:
    if not isinstance(table, pd.DataFrame):
        return []
    rows = []
    for number, row in enumerate(table.to_dict("records"), start=1):
        key = "" if pd.isna(row.get("Key")) else str(row.get("Key")).strip()
        if not key:
            continue
        try:
            weight = float(row.get("Weight"))
        except (TypeError, ValueError):
            raise ValidationError(f"Variant row {number}: the weight is not a number.") from None
        label = "" if pd.isna(row.get("Label")) else str(row.get("Label"))
        rows.append((key, label, weight))
    return rows


def _new_experiment(actor: Actor) -> None:
    st.caption(
        "Plan the experiment: the sample size per variant follows from the baseline, the "
        "smallest effect worth detecting (absolute: 0.02 is two percentage points for a rate), "
        "alpha and power, and is fixed once the experiment starts."
    )
    c1, c2 = st.columns(2)
    key = c1.text_input("Key", max_chars=64, placeholder="e.g. kb-prompt-v4", key="exp_new_key")
    name = c2.text_input("Name", max_chars=200, key="exp_new_name")
    c1, c2, c3 = st.columns(3)
    kind = c1.selectbox("Kind", list(KINDS), format_func=KINDS.__getitem__, key="exp_new_kind")
    metric = c2.text_input("Metric", max_chars=64, placeholder="e.g. helpful", key="exp_new_metric")
    metric_kind = c3.selectbox(
        "Metric kind",
        METRIC_KINDS,
        format_func={"proportion": "Proportion (0/1 per unit)", "mean": "Mean"}.__getitem__,
        key="exp_new_metric_kind",
    )
    st.write("**Variants** (the first is the control; weights are shares of the traffic)")
    variants_table = st.data_editor(
        DEFAULT_VARIANTS,
        num_rows="dynamic",
        hide_index=True,
        column_config={
            "Key": st.column_config.TextColumn("Key"),
            "Label": st.column_config.TextColumn("Label"),
            "Weight": st.column_config.NumberColumn("Weight", min_value=0.0),
        },
        key=VARIANTS_KEY,
    )
    rate = metric_kind == "proportion"
    c1, c2, c3, c4, c5 = st.columns(5)
    baseline = c1.number_input(
        "Baseline rate" if rate else "Baseline mean",
        value=0.10 if rate else 1.0,
        format="%.4f",
        key=f"exp_new_baseline_{metric_kind}",
    )
    sd = None
    if not rate:
        sd = c2.number_input("Standard deviation", value=0.5, format="%.4f", key="exp_new_sd")
    mde = c3.number_input(
        "Minimum detectable effect",
        value=0.02 if rate else 0.1,
        format="%.4f",
        key=f"exp_new_mde_{metric_kind}",
    )
    alpha = c4.number_input(
        "Alpha", value=0.05, min_value=0.001, max_value=0.499, key="exp_new_alpha"
    )
    power = c5.number_input("Power", value=0.8, min_value=0.51, max_value=0.99, key="exp_new_power")
    c1, c2 = st.columns(2)
    higher = c1.toggle("Higher is better", value=True, key="exp_new_higher")
    sequential = c2.toggle(
        "Sequential (always-valid test: safe to look any time)", key="exp_new_sequential"
    )
    description = st.text_area("Description", max_chars=1000, key="exp_new_description")
    try:
        variants = _variant_rows(variants_table)
        count = max(2, len(variants))
        size = plan_sample_size(
            metric_kind,
            baseline,
            mde,
            alpha,
            power,
            baseline_sd=sd,
            higher_is_better=higher,
            variants=count,
        )
    except DomainError as exc:
        st.warning(exc.message)
        size, variants = None, []
    if size is not None:
        st.metric(
            "Sample size per variant",
            f"{size:,}",
            delta=f"{size * max(2, len(variants)):,} units in all",
            delta_color="off",
        )
    if st.button("Create experiment", type="primary", key="exp_new_create"):
        try:
            created = experiments.create_experiment(
                actor,
                key,
                name,
                kind,
                variants,
                metric,
                metric_kind,
                baseline=baseline,
                mde=mde,
                higher_is_better=higher,
                baseline_sd=sd,
                alpha=alpha,
                power=power,
                sequential=sequential,
                description=description,
            )
        except DomainError as exc:
            deps.show_error(exc)  # the fields keep what was typed
            return
        for field in (*NEW_FIELDS, VARIANTS_KEY):
            st.session_state.pop(field, None)
        st.session_state[PENDING_KEY] = created.key
        widgets.flash(
            FLASH_KEY,
            f"Experiment {created.key} started: {created.sample_size:,} units per variant needed.",
        )
        st.rerun()


if __name__ == "__main__":
    render()
