"""Documents: knowledge-base collections (create, settings, access, delete) and their documents
(upload several at once with progress and a per-file report, list, delete)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import streamlit as st

from console import deps, widgets
from core.auth.roles import Permission, Role
from core.config import get_settings
from core.errors import DomainError
from core.rag import collections as kb
from core.rag.embedders import MINILM
from core.rag.extract import ACCEPTED_EXTENSIONS
from core.rag.ingest import (
    IngestReport,
    UploadedFile,
    delete_document,
    ingest_files,
    list_documents,
)

SELECT_KEY = "kbd_collection"
NEXT_KEY = "kbd_next"  # a collection to select on the next run (set before the selectbox exists)
FLASH_KEY = "kbd_flash"
REPORTS_KEY = "kbd_reports"
UPLOADER_KEY = "kbd_uploader_round"  # bumped after an upload, so the uploader starts empty
# dotted: Streamlit reads a bare "text" as "any text/* file"
UPLOAD_TYPES = list(ACCEPTED_EXTENSIONS)
_STATUS_COLOURS = {
    "indexed": "#2e7d32",
    "replaced": "#2e7d32",
    "unchanged": "#757575",
    "duplicate": "#ef6c00",
    "failed": "#c62828",
}


def uploaded_files(files: Iterable[Any] | None) -> list[UploadedFile]:
    """Streamlit's uploads (anything with `.name` and `.getvalue()`) as core's `UploadedFile`s."""
    return [UploadedFile(str(f.name), bytes(f.getvalue())) for f in files or ()]


def report_frame(reports: list[IngestReport]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Source": r.source,
                "Status": r.status,
                "Message": r.message,
                "Chunks": r.chunks,
                "Embedded": r.embedded,
                "Seconds": round(r.seconds, 2),
            }
            for r in reports
        ],
        columns=["Source", "Status", "Message", "Chunks", "Embedded", "Seconds"],
    )


def _flash(message: str) -> None:
    widgets.flash(FLASH_KEY, message)


def _role_label(role: Role) -> str:
    return role.label


def _collections_table(collections: list[kb.CollectionInfo]) -> None:
    frame = pd.DataFrame(
        [
            {
                "Name": c.name,
                "Documents": c.documents,
                "Chunks": c.chunks,
                "Roles": ", ".join(r.label for r in c.roles),
                "Owner": c.owner,
                "Embedding model": c.embedding_model,
                "Fusion": c.fusion,
                "Alpha": c.alpha,
                "Relevance floor": c.min_relevance,
                "Updated": deps.local_time(c.updated_at, "%Y-%m-%d %H:%M"),
                "Description": c.description,
            }
            for c in collections
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def _create_form(actor) -> None:  # type: ignore[no-untyped-def]
    with st.form("kbd_create", clear_on_submit=False):
        c1, c2 = st.columns(2)
        name = c1.text_input("Name", max_chars=80, key="kbd_new_name")
        roles = c2.multiselect(
            "Roles that may use it (admins always may)",
            list(Role),
            default=[actor.role],
            format_func=_role_label,
            key="kbd_new_roles",
        )
        description = st.text_area(
            "Description", max_chars=500, height=68, key="kbd_new_description"
        )
        c3, c4, c5, c6 = st.columns(4)
        model = c3.text_input(
            "Embedding model",
            value=MINILM,
            max_chars=200,
            help="minilm (bundled), tuned:NAME or openai:MODEL",
            key="kbd_new_model",
        )
        fusion = c4.selectbox("Fusion", kb.FUSIONS, key="kbd_new_fusion")
        alpha = c5.slider("Dense weight (alpha)", 0.0, 1.0, 0.5, step=0.05, key="kbd_new_alpha")
        floor = c6.number_input(
            "Relevance floor (cosine)",
            -1.0,
            1.0,
            0.35,
            step=0.05,
            format="%.2f",
            key="kbd_new_floor",
        )
        submitted = st.form_submit_button("Create collection", type="primary")
    if not submitted:
        return
    try:
        info = kb.create_collection(
            actor,
            name,
            description=description,
            roles=[r.value for r in roles],
            embedding_model=model,
            fusion=fusion,
            alpha=float(alpha),
            min_relevance=float(floor),
        )
    except DomainError as exc:
        deps.show_error(exc)
        return
    _flash(f"Created collection '{info.name}'.")
    st.session_state[NEXT_KEY] = info.id
    st.rerun()


def _settings(actor, c: kb.CollectionInfo) -> None:  # type: ignore[no-untyped-def]
    with st.form(f"kbd_edit_{c.id}"):
        description = st.text_area(
            "Description",
            value=c.description,
            max_chars=500,
            height=68,
            key=f"kbd_edit_description_{c.id}",
        )
        roles = st.multiselect(
            "Roles that may use it (admins always may)",
            list(Role),
            default=list(c.roles),
            format_func=_role_label,
            key=f"kbd_edit_roles_{c.id}",
        )
        c1, c2, c3 = st.columns(3)
        fusion = c1.selectbox(
            "Fusion", kb.FUSIONS, index=kb.FUSIONS.index(c.fusion), key=f"kbd_edit_fusion_{c.id}"
        )
        alpha = c2.slider(
            "Dense weight (alpha)",
            0.0,
            1.0,
            float(c.alpha),
            step=0.05,
            key=f"kbd_edit_alpha_{c.id}",
        )
        floor = c3.number_input(
            "Relevance floor (cosine)",
            -1.0,
            1.0,
            float(c.min_relevance),
            0.05,
            format="%.2f",
            key=f"kbd_edit_floor_{c.id}",
        )
        st.caption(
            f"Embedding model {c.embedding_model} ({c.dimension or '?'} dimensions), chunks of "
            f"{c.chunk_chars:,} characters with {c.overlap_chars:,} overlap: these apply when "
            "documents are indexed."
        )
        submitted = st.form_submit_button("Save settings", type="primary")
    if submitted:
        try:
            kb.update_collection(
                actor,
                c.id,
                description=description,
                roles=[r.value for r in roles],
                fusion=fusion,
                alpha=float(alpha),
                min_relevance=float(floor),
            )
        except DomainError as exc:
            deps.show_error(exc)
            return
        _flash(f"Saved the settings of '{c.name}'.")
        st.rerun()
    with st.container(border=True):
        st.markdown("**Delete this collection**")
        st.caption(
            f"Removes '{c.name}' with its {c.documents:,} documents, {c.chunks:,} chunks and its "
            "index. The query log keeps its questions. This cannot be undone."
        )
        typed = st.text_input(
            "Type the collection's name to confirm", max_chars=80, key=f"kbd_del_name_{c.id}"
        )
        if st.button(
            "Delete collection",
            icon=":material/delete_forever:",
            disabled=typed.strip() != c.name,
            key=f"kbd_del_{c.id}",
        ):
            try:
                kb.delete_collection(actor, c.id)
            except DomainError as exc:
                deps.show_error(exc)
                return
            _flash(f"Deleted collection '{c.name}'.")
            st.session_state[NEXT_KEY] = None
            st.session_state.pop(REPORTS_KEY, None)
            st.rerun()


def _show_reports(reports: list[IngestReport]) -> None:
    failed = [r for r in reports if r.status == "failed"]
    done = [r for r in reports if r.status in ("indexed", "replaced")]
    summary = f"{len(done)} of {len(reports)} files indexed"
    if failed:
        st.error(
            f"{summary}; {len(failed)} failed:\n\n"
            + "\n".join(f"- **{r.source}**: {r.message}" for r in failed),
            icon=":material/error:",
        )
    else:
        st.success(summary + ".", icon=":material/check:")

    def colour(value: object) -> str:
        hue = _STATUS_COLOURS.get(str(value))
        return f"color: {hue}; font-weight: 600" if hue else ""

    frame = report_frame(reports)
    st.dataframe(frame.style.map(colour, subset=["Status"]), hide_index=True, width="stretch")


def _upload(actor, c: kb.CollectionInfo) -> None:  # type: ignore[no-untyped-def]
    limit = get_settings().rag_max_file_mb
    round_ = st.session_state.get(UPLOADER_KEY, 0)
    files = st.file_uploader(
        f"Add documents to '{c.name}'",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key=f"kbd_files_{c.id}_{round_}",
        help=f"Up to {limit:,} MB per file. A file already there with the same name is replaced.",
    )
    st.caption(f"Accepted: {', '.join(ACCEPTED_EXTENSIONS)} · up to {limit:,} MB per file.")
    if st.button(
        "Upload and index",
        type="primary",
        icon=":material/upload:",
        disabled=not files,
        key="kbd_upload",
    ):
        bar = st.progress(0.0, text="Starting...")

        def on_progress(done: int, total: int, name: str, step: str) -> None:
            share = min(done / total, 1.0) if total else 1.0
            bar.progress(share, text=f"{done}/{total} · {name}: {step}" if name else "Done")

        try:
            reports = ingest_files(actor, c.id, uploaded_files(files), on_progress)
        except DomainError as exc:
            deps.show_error(exc)
            return
        st.session_state[REPORTS_KEY] = (c.id, reports)
        st.session_state[UPLOADER_KEY] = round_ + 1
        st.rerun()
    saved = st.session_state.get(REPORTS_KEY)
    if saved and saved[0] == c.id:
        st.markdown("**Last upload**")
        _show_reports(saved[1])


def _documents(actor, c: kb.CollectionInfo) -> None:  # type: ignore[no-untyped-def]
    docs = list_documents(actor, c.id)
    if not docs:
        st.info(f"'{c.name}' has no documents yet: upload some in the Upload tab.")
        return
    frame = pd.DataFrame(
        [
            {
                "Source": d.source,
                "Title": d.title,
                "Type": d.mime,
                "Pages": d.pages,
                "Chunks": d.chunks,
                "Size (KB)": round(d.size_bytes / 1024, 1),
                "Document date": deps.local_time(d.doc_date, "%Y-%m-%d"),
                "Uploaded by": d.uploaded_by,
                "Updated": deps.local_time(d.updated_at, "%Y-%m-%d %H:%M"),
            }
            for d in docs
        ]
    )
    st.write(f"{len(frame):,} documents")
    st.dataframe(frame, hide_index=True, width="stretch")
    by_id = {d.id: d for d in docs}
    with st.container(border=True):
        st.markdown("**Delete a document**")
        doc_id = st.selectbox(
            "Document",
            list(by_id),
            format_func=lambda i: f"{by_id[i].source} ({by_id[i].chunks} chunks)",
            key=f"kbd_doc_{c.id}",
        )
        sure = st.checkbox(
            "Yes, delete this document and its chunks", key=f"kbd_doc_sure_{c.id}_{doc_id}"
        )
        if st.button(
            "Delete document",
            icon=":material/delete:",
            disabled=not sure,
            key=f"kbd_doc_delete_{c.id}",
        ):
            try:
                delete_document(actor, c.id, doc_id)
            except DomainError as exc:
                deps.show_error(exc)
                return
            _flash(f"Deleted '{by_id[doc_id].source}' from '{c.name}'.")
            st.session_state.pop(f"kbd_doc_{c.id}", None)
            st.rerun()


def _select(collections: list[kb.CollectionInfo]) -> kb.CollectionInfo:
    by_id = {c.id: c for c in collections}
    if NEXT_KEY in st.session_state:
        chosen = st.session_state.pop(NEXT_KEY)
        if chosen in by_id:
            st.session_state[SELECT_KEY] = chosen
        else:
            st.session_state.pop(SELECT_KEY, None)
    if st.session_state.get(SELECT_KEY) not in by_id:
        st.session_state.pop(SELECT_KEY, None)
    cid = st.selectbox(
        "Collection",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} · {by_id[i].documents:,} documents",
        key=SELECT_KEY,
    )
    return by_id[cid]


def render() -> None:
    actor = deps.page_actor(Permission.RAG_MANAGE)
    st.title("Documents")
    st.caption(
        "Knowledge-base collections: who may use them, how they are searched, and the documents "
        "in them."
    )
    widgets.show_flash(FLASH_KEY)
    try:
        collections = kb.list_collections(actor)
        if collections:
            _collections_table(collections)
            c = _select(collections)
            upload_tab, docs_tab, settings_tab, new_tab = st.tabs(
                ["Upload", "Documents", "Settings", "New collection"]
            )
            with upload_tab:
                _upload(actor, c)
            with docs_tab:
                _documents(actor, c)
            with settings_tab:
                _settings(actor, c)
            with new_tab:
                _create_form(actor)
        else:
            st.info("No collection is open to your role yet: create the first one.")
            _create_form(actor)
    except DomainError as exc:
        deps.show_error(exc)


if __name__ == "__main__":
    render()
