"""Dataset anonymiser: upload a CSV or Parquet file, see which columns hold personal data (on a
sample of rows), choose per column to keep, drop or anonymise it, compare the first rows before
and after, then anonymise the whole file into a new one and download it."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import streamlit as st

from console import deps
from core.auth.roles import Permission
from core.config import get_settings
from core.errors import DomainError
from core.privacy.anonymize import OPERATORS
from core.privacy.dataset_files import EXTENSIONS, DatasetUpload
from core.privacy.datasets import (
    ACTIONS,
    SAMPLE_ROWS,
    AnonymisedDataset,
    ColumnAction,
    DatasetScan,
    anonymise_dataset,
    findings_csv,
    preview_anonymisation,
    scan_dataset,
)
from core.privacy.text_scan import COMMON_ENTITIES

SCAN_KEY = "pii_ds_scan"  # (fingerprint of the upload, DatasetScan)
RESULT_KEY = "pii_ds_result"  # (fingerprint, AnonymisedDataset)
UPLOAD_TYPES = list(EXTENSIONS)  # dotted: ".csv", ".parquet", ".pq"
ACTION_HELP = {
    "keep": "keep as is",
    "drop": "drop the column",
    "replace": "replace with <TYPE>",
    "mask": "mask with *",
    "hash": "hash (salted, linkable)",
    "redact": "redact (empty)",
    "encrypt": "encrypt (reversible)",
}
MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def fingerprint(file: Any, data: bytes) -> str:
    """Which upload a stored scan belongs to (a new file with the same name is a new scan).
    Streamlit gives each upload an id; hashing the bytes is the fallback."""
    ident = getattr(file, "file_id", None) or hashlib.sha256(data).hexdigest()[:16]
    return f"{file.name}:{len(data)}:{ident}"


def report_frame(scan: DatasetScan) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Column": r.name,
                "Type": r.dtype,
                "Sampled cells": r.sampled,
                "With PII %": round(100 * r.share, 1),
                "Entities": ", ".join(f"{k} ({v})" for k, v in r.entities.items()),
                "Examples (masked)": " | ".join(r.examples),
                "Identifier column": r.whole_cell_entity or "",
                "Suggested": r.suggested,
            }
            for r in scan.reports
        ],
        columns=[
            "Column",
            "Type",
            "Sampled cells",
            "With PII %",
            "Entities",
            "Examples (masked)",
            "Identifier column",
            "Suggested",
        ],
    )


def _scan_options() -> tuple[int, list[str], float]:
    with st.expander("Scan options"):
        c1, c2, c3 = st.columns([1, 3, 1])
        rows = c1.number_input(
            "Sample rows", 10, 5_000, SAMPLE_ROWS, step=50, key="pii_ds_sample_rows"
        )
        entities = c2.multiselect(
            "Entity types (none picked: all)", COMMON_ENTITIES, key="pii_ds_entities"
        )
        score = c3.slider("Minimum score", 0.0, 1.0, 0.4, step=0.05, key="pii_ds_min_score")
    return int(rows), list(entities), float(score)


def _plan(scan: DatasetScan, key: str) -> dict[str, ColumnAction]:
    """One action picker per column, defaulting to the scan's suggestion. The widget keys carry
    the upload's fingerprint: another file's columns start from their own suggestions."""
    tag = hashlib.sha256(key.encode()).hexdigest()[:8]
    st.markdown("**What to do with each column**")
    plan: dict[str, ColumnAction] = {}
    grid = st.columns(3)
    for i, r in enumerate(scan.reports):
        cell = grid[i % 3]
        action = cell.selectbox(
            r.name or "(unnamed column)",
            ACTIONS,
            index=ACTIONS.index(r.suggested),
            format_func=ACTION_HELP.get,
            key=f"pii_ds_action_{tag}_{i}",
            help=(
                f"Identifier column ({r.whole_cell_entity}): every cell is anonymised whole."
                if r.whole_cell_entity
                else "Free text: only the findings in each cell are anonymised."
            ),
        )
        whole = r.whole_cell_entity if action in OPERATORS else None
        plan[r.name] = ColumnAction(action, whole)
    return plan


def _preview(actor: Any, scan: DatasetScan, plan: dict[str, ColumnAction], options: Any) -> None:
    _, entities, score = options
    before, after = st.tabs(["Before", "After"])
    with before:
        st.dataframe(scan.preview, hide_index=True, width="stretch")
    with after:
        try:
            frame = preview_anonymisation(actor, scan, plan, entities=entities, min_score=score)
        except DomainError as exc:
            deps.show_error(exc)
            return
        st.dataframe(frame, hide_index=True, width="stretch")


def _run(
    actor: Any, upload: DatasetUpload, key: str, plan: dict[str, ColumnAction], options: Any
) -> None:
    _, entities, score = options
    neutralise = True
    if upload.name.lower().endswith(".csv"):
        neutralise = st.checkbox(
            "Protect spreadsheet users: put ' before cells that start like a formula (=, +, -, @)",
            value=True,
            key="pii_ds_neutralise",
        )
    if st.button(
        "Anonymise the whole file", type="primary", icon=":material/shield:", key="pii_ds_run"
    ):
        bar = st.progress(0.0, text="Starting...")

        def on_progress(share: float, message: str) -> None:
            bar.progress(min(max(share, 0.0), 1.0), text=message)

        try:
            result = anonymise_dataset(
                actor,
                upload,
                plan,
                entities=entities,
                min_score=score,
                neutralise_formulas=neutralise,
                progress=on_progress,
            )
        except DomainError as exc:
            bar.empty()
            deps.show_error(exc)
            return
        st.session_state[RESULT_KEY] = (key, result)
    saved = st.session_state.get(RESULT_KEY)
    if saved and saved[0] == key:
        done: AnonymisedDataset = saved[1]
        if not done.path.exists():  # removed after KEEP_OUTPUT_HOURS, or another home
            st.info("The anonymised file is no longer there: run the anonymisation again.")
            return
        changed = sum(done.changed_cells.values())
        st.success(
            f"Anonymised {done.rows:,} rows in {done.seconds:,.1f} s: {changed:,} cells changed, "
            f"{len(done.dropped)} columns dropped.",
            icon=":material/check:",
        )
        st.download_button(
            f"Download {done.download_name}",
            data=done.path.read_bytes(),
            file_name=done.download_name,
            mime=MIME[done.format],
            icon=":material/download:",
            key="pii_ds_download",
        )


def _scan_and_plan(actor: Any, file: Any) -> None:
    data = bytes(file.getvalue())
    upload = DatasetUpload(str(file.name), data)
    key = fingerprint(file, data)
    options = _scan_options()
    if st.button("Scan for PII", type="primary", icon=":material/search:", key="pii_ds_scan_btn"):
        bar = st.progress(0.0, text="Reading...")

        def on_progress(share: float, message: str) -> None:
            bar.progress(min(max(share, 0.0), 1.0), text=message)

        rows, entities, score = options
        try:
            scan = scan_dataset(
                actor,
                upload,
                sample_rows=rows,
                entities=entities,
                min_score=score,
                progress=on_progress,
            )
        except DomainError as exc:
            bar.empty()
            st.session_state.pop(SCAN_KEY, None)
            deps.show_error(exc)
            return
        bar.empty()
        st.session_state[SCAN_KEY] = (key, scan)
        st.session_state.pop(RESULT_KEY, None)
    saved = st.session_state.get(SCAN_KEY)
    if not saved or saved[0] != key:
        st.info("Scan the file to see which columns hold personal data.")
        return
    scan: DatasetScan = saved[1]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Rows", f"{scan.rows:,}")
    c2.metric("Columns", len(scan.columns))
    c3.metric("Columns with PII", sum(1 for r in scan.reports if r.with_pii))
    c4.metric("Size", f"{scan.size_bytes / 1024 / 1024:,.1f} MB")
    st.caption(f"Findings on a random sample of {scan.sampled_rows:,} rows.")
    st.dataframe(report_frame(scan), hide_index=True, width="stretch")
    st.download_button(
        "Download the findings (CSV)",
        data=findings_csv(scan),
        file_name=f"{scan.name.rsplit('.', 1)[0]}-pii-findings.csv",
        mime="text/csv",
        icon=":material/table:",
        key="pii_ds_findings_csv",
    )
    plan = _plan(scan, key)
    _preview(actor, scan, plan, options)
    _run(actor, upload, key, plan, options)


def render() -> None:
    actor = deps.page_actor(Permission.PII_SCAN)
    st.title("Dataset anonymiser")
    limit = get_settings().pii_max_file_mb
    st.caption(
        "Find the columns of a CSV or Parquet file that hold personal data, then write an "
        "anonymised copy. Scans and anonymisations are recorded in the audit log (counts and "
        "column names, never the values)."
    )
    file = st.file_uploader(
        "Dataset (CSV or Parquet)",
        type=UPLOAD_TYPES,
        max_upload_size=limit,
        key="pii_ds_upload",
        help=f"Up to {limit:,} MB. CSV must be UTF-8; the delimiter is detected.",
    )
    if file is None:
        st.info(f"Upload a .csv or .parquet file (up to {limit:,} MB) to start.")
        return
    try:
        _scan_and_plan(actor, file)
    except DomainError as exc:
        deps.show_error(exc)


if __name__ == "__main__":
    render()
