"""The erasure part of the data-subject request page: steps per data source, run or resume
with progress, and the completion certificate."""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
import streamlit as st

from console import deps, widgets
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.errors import DomainError
from core.privacy import erasure
from core.privacy import requests as rq

Flash = Callable[[str, str], None]  # (message, "success" | "warning"), shown after the rerun


def _steps_table(status: erasure.ErasureStatus) -> None:
    widgets.state_table(
        pd.DataFrame(
            [
                {
                    "Source": s.label,
                    "Status": s.status,
                    "Action": s.action,
                    "Rows": s.rows,
                    "Reason / error": s.error if s.status == "failed" else s.reason,
                    "Finished": deps.local_time(s.finished_at, "%Y-%m-%d %H:%M:%S"),
                }
                for s in status.steps
            ]
        ),
        "Status",
    )


def erasure_panel(actor: Actor, info: rq.RequestInfo, flash: Flash) -> None:
    """Per-source progress, the resume state, and running (or resuming) the erasure."""
    status = erasure.erasure_status(actor, info.reference)
    with st.container(border=True):
        st.markdown("**Erasure across every data source**")
        if status.steps:
            _steps_table(status)
        if status.state == "completed":
            st.success(status.message)
        elif status.needs_resume:
            st.error(status.message, icon=":material/warning:")
        if status.state == "completed" or not has_permission(actor.role, Permission.DSR_ERASE):
            return
        if info.verified_at is None:
            st.caption("Verify the requester's identity first.")
        sure = st.checkbox(
            "I understand: the subject's data is deleted or anonymised; this cannot be undone.",
            key=f"dsr_erase_sure_{info.reference}",
        )
        label = "Resume erasure" if status.needs_resume else "Run erasure"
        if st.button(
            label,
            type="primary",
            icon=":material/delete_forever:",
            disabled=not sure or info.verified_at is None or not info.is_open,
            key="dsr_erase_button",
        ):
            _run_erasure(actor, info.reference, flash)


def _run_erasure(actor: Actor, reference: str, flash: Flash) -> None:
    with st.status("Erasing...", expanded=True) as box:
        bar = st.progress(0.0)

        def on_progress(done: int, total: int, label: str, state: str) -> None:
            bar.progress(min(done / total, 1.0) if total else 1.0, text=f"{done}/{total}")
            if label:
                st.write(f"{label}...")

        try:
            result = erasure.run_erasure(actor, reference, on_progress)
        except DomainError as exc:
            box.update(label="Erasure refused", state="error")
            deps.show_error(exc)
            return
        done = result.state == "completed"
        box.update(label=result.message, state="complete" if done else "error")
    flash(result.message, "success" if done else "warning")
    st.rerun()


def certificate_panel(actor: Actor, info: rq.RequestInfo) -> None:
    """The completion certificate: its digest, what was retained and why, download."""
    certificate = erasure.get_certificate(actor, info.reference)
    with st.container(border=True):
        st.markdown(f"**Completion certificate** · sha256 `{certificate['sha256']}`")
        retained = certificate.get("retained", [])
        if retained:
            st.markdown(
                "Retained, with the reason:\n"
                + "\n".join(f"- **{r['label']}** ({r['rows']}): {r['reason']}" for r in retained)
            )
        st.json(certificate, expanded=False)
        st.download_button(
            "Download certificate (JSON)",
            json.dumps(certificate, indent=2, ensure_ascii=False),
            f"{info.reference}-certificate.json",
            "application/json",
            icon=":material/verified:",
            key="dsr_certificate_download",
        )
