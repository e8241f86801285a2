"""Models: the MLflow registry. Every registered model with its aliases (champion, challenger)
and open drift alerts; a model's versions; a version's run (parameters, metrics, input datasets,
signature); promoting a version to an alias, rolling an alias back, and the alias history MLflow
itself does not keep. All of it through `core.mlops` (permissions and audit live there)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from console import deps, widgets
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.errors import DomainError
from core.mlops import aliases, model_views, monitor_views

FLASH_KEY = "models_flash"
MODEL_KEY = "models_selected"


def render() -> None:
    actor = deps.page_actor(Permission.MLOPS_READ)
    st.title("Models")
    st.caption(
        "Registered models from MLflow. Serving code loads a version by alias "
        "(`models:/<name>@champion`), so moving an alias is how a version is promoted or rolled "
        "back; each move needs a reason and is kept in the history below and in the audit log."
    )
    widgets.show_flash(FLASH_KEY)
    try:
        tracking = deps.mlflow_tracking()
        found = model_views.models(actor, tracking)
        if not found:
            st.info(
                "No registered models yet. Log and register one with MLflow "
                f"(tracking URI `{tracking.uri}`), or seed the demo tenant."
            )
            return
        alerts = _open_alerts(actor)
        _models_table(found, alerts)
        names = [m.name for m in found]
        name = st.selectbox("Model", names, key=MODEL_KEY)
        model = next(m for m in found if m.name == name)
        _model(actor, tracking, model, alerts.get(model.name, 0))
    except DomainError as exc:
        deps.show_error(exc)


def _open_alerts(actor: Actor) -> dict[str, int]:
    return monitor_views.open_alerts_by_target(actor)


def _models_table(found: list[Any], alerts: dict[str, int]) -> None:
    frame = pd.DataFrame(
        {
            "Model": [m.name for m in found],
            "Versions": [m.versions for m in found],
            "Latest": [m.latest_version or "" for m in found],
            "Champion": [m.aliases.get(aliases.CHAMPION, "") for m in found],
            "Challenger": [m.aliases.get(aliases.CHALLENGER, "") for m in found],
            "Other aliases": [
                ", ".join(
                    f"{a} = v{v}"
                    for a, v in sorted(m.aliases.items())
                    if a not in aliases.SUGGESTED_ALIASES
                )
                for m in found
            ],
            "Open drift alerts": [alerts.get(m.name, 0) for m in found],
            "Updated": [deps.local_time(m.updated_at, "%Y-%m-%d %H:%M") for m in found],
        }
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def _model(actor: Actor, tracking: Any, model: Any, open_alerts: int) -> None:
    if model.description:
        st.markdown(model.description)
    if open_alerts:
        st.warning(
            f"{open_alerts} open drift alerts for {model.name}: see Monitoring.",
            icon=":material/warning:",
        )
    versions = model_views.versions(actor, model.name, tracking)
    st.subheader("Versions")
    if not versions:
        st.info(f"{model.name} has no versions registered yet.")
        return
    st.dataframe(
        pd.DataFrame(
            {
                "Version": [v.version for v in versions],
                "Aliases": [", ".join(v.aliases) for v in versions],
                "Created": [deps.local_time(v.created_at, "%Y-%m-%d %H:%M") for v in versions],
                "Status": [v.status for v in versions],
                "Signature": ["yes" if v.has_signature else "missing" for v in versions],
                "Description": [v.description for v in versions],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    labels = {
        f"v{v.version}" + (f" ({', '.join(v.aliases)})" if v.aliases else ""): v for v in versions
    }
    chosen = labels[st.selectbox("Version", list(labels), key=f"version_{model.name}")]
    run_tab, alias_tab, history_tab = st.tabs(["Run", "Promote / roll back", "Alias history"])
    with run_tab:
        _version(actor, tracking, chosen)
    with alias_tab:
        _alias_actions(actor, tracking, model, chosen)
    with history_tab:
        _history(actor, model.name)


def _version(actor: Actor, tracking: Any, version: Any) -> None:
    if not version.has_signature:
        st.warning(
            "This version has no signature: MLflow cannot check inputs, and drift monitors cannot "
            "know its features. Log the model with a signature (`mlflow.models.infer_signature`).",
            icon=":material/warning:",
        )
    else:
        with st.expander("Signature"):
            st.dataframe(
                pd.DataFrame(version.signature_inputs, columns=["input", "type"]),
                hide_index=True,
            )
            if version.signature_outputs:
                st.dataframe(
                    pd.DataFrame(version.signature_outputs, columns=["output", "type"]),
                    hide_index=True,
                )
    if not version.run_id:
        st.info("This version was registered without a run.")
        return
    details = model_views.run(actor, version.run_id, tracking)
    st.caption(
        f"Run `{details.run_id}` in experiment {details.experiment}: {details.status}, "
        f"started {deps.local_time(details.start_time, '%Y-%m-%d %H:%M')}"
    )
    params, metrics = st.columns(2)
    with params:
        st.markdown("**Parameters**")
        st.dataframe(
            pd.DataFrame(sorted(details.params.items()), columns=["parameter", "value"]),
            hide_index=True,
            width="stretch",
        )
    with metrics:
        st.markdown("**Metrics**")
        st.dataframe(
            pd.DataFrame(sorted(details.metrics.items()), columns=["metric", "value"]),
            hide_index=True,
            width="stretch",
            column_config={"value": st.column_config.NumberColumn(format="%.4g")},
        )
    if details.datasets:
        st.markdown("**Input datasets**")
        st.dataframe(
            pd.DataFrame(
                {
                    "Dataset": [d.name for d in details.datasets],
                    "Context": [d.context for d in details.datasets],
                    "Rows": [d.rows for d in details.datasets],
                    "Columns": [", ".join(d.columns) for d in details.datasets],
                    "Digest": [d.digest for d in details.datasets],
                    "Source": [d.source_type for d in details.datasets],
                }
            ),
            hide_index=True,
            width="stretch",
        )


def _alias_actions(actor: Actor, tracking: Any, model: Any, version: Any) -> None:
    if not has_permission(actor.role, Permission.MLOPS_PROMOTE):
        st.info("Your role can read the registry but not move aliases.")
        return
    current = ", ".join(f"{a} = v{v}" for a, v in sorted(model.aliases.items())) or "none"
    st.caption(f"Current aliases: {current}")
    with st.form(f"promote_{model.name}"):
        st.markdown(f"**Point an alias at v{version.version}**")
        alias = st.selectbox("Alias", [*aliases.SUGGESTED_ALIASES, "other..."])
        other = st.text_input("Other alias name", help="only when 'other...' is chosen")
        reason = st.text_area(
            "Reason", placeholder="e.g. v2 beats v1 on 2012 H2: MAE 52 vs 71; drift alerts since"
        )
        if st.form_submit_button("Move alias", type="primary"):
            try:
                change = aliases.set_alias(
                    actor,
                    model.name,
                    other if alias == "other..." else alias,
                    version.version,
                    reason,
                    tracking=tracking,
                )
            except DomainError as exc:
                deps.show_error(exc)
            else:
                was = f" (was v{change.previous_version})" if change.previous_version else ""
                widgets.flash(
                    FLASH_KEY,
                    f"{model.name}@{change.alias} now points at v{change.version}{was}.",
                )
                st.rerun()
    with st.form(f"rollback_{model.name}"):
        st.markdown("**Roll an alias back** to the version it held before")
        held = sorted(model.aliases) or list(aliases.SUGGESTED_ALIASES)
        alias = st.selectbox("Alias to roll back", held)
        reason = st.text_area("Reason for the rollback", key=f"rollback_reason_{model.name}")
        if st.form_submit_button("Roll back"):
            try:
                change = aliases.roll_back(actor, model.name, alias, reason, tracking=tracking)
            except DomainError as exc:
                deps.show_error(exc)
            else:
                widgets.flash(
                    FLASH_KEY,
                    f"{model.name}@{change.alias} rolled back to v{change.version} "
                    f"(was v{change.previous_version}).",
                )
                st.rerun()


def _history(actor: Actor, name: str) -> None:
    changes = aliases.alias_history(actor, name)
    if not changes:
        st.info("No alias moves recorded for this model yet.")
        return
    frame = pd.DataFrame(
        {
            "When": [deps.local_time(c.ts, "%Y-%m-%d %H:%M") for c in changes],
            "Alias": [c.alias for c in changes],
            "Action": [c.action for c in changes],
            "Version": [f"v{c.version}" if c.version else "(removed)" for c in changes],
            "Previous": [f"v{c.previous_version}" if c.previous_version else "" for c in changes],
            "By": [c.actor for c in changes],
            "Reason": [c.reason for c in changes],
        }
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    widgets.csv_download(frame, "Download CSV", f"{name}-alias-history.csv")


if __name__ == "__main__":
    render()
