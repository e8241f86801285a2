"""PII scanner: paste text or pick a knowledge-base document, see what personal data it holds
(highlighted inline, one colour per entity type, and as a table), and preview the text
anonymised with a chosen operator."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps
from core.auth.roles import Permission
from core.errors import DomainError
from core.privacy.anonymize import OPERATORS
from core.privacy.document_scan import DocumentScan, scan_document
from core.privacy.engine import Finding
from core.privacy.text_scan import (
    COMMON_ENTITIES,
    MAX_TEXT_CHARS,
    Segment,
    TextScan,
    anonymise_text,
    scan_text,
)
from core.rag.collections import list_collections
from core.rag.ingest import list_documents

TEXT_SCAN_KEY = "pii_text_scan"
TEXT_ANON_KEY = "pii_text_anonymised"
DOC_SCAN_KEY = "pii_doc_scan"
SHOWN_CHUNKS = 50  # chunks drawn with highlights; the table below lists every finding
OPERATOR_HELP = {
    "replace": "replace: the entity type in angle brackets, e.g. <EMAIL_ADDRESS>",
    "mask": "mask: every character as *",
    "hash": "hash: SHA-256 (salted with OMNI_PII_HASH_SALT when set)",
    "redact": "redact: removed",
    "encrypt": "encrypt: AES with OMNI_PII_ENCRYPTION_KEY (reversible)",
}
_PALETTE = (
    "#ffd54f",
    "#81d4fa",
    "#a5d6a7",
    "#f48fb1",
    "#ce93d8",
    "#ffab91",
    "#80cbc4",
    "#e6ee9c",
    "#b0bec5",
    "#bcaaa4",
)


def colour_of(entity_type: str) -> str:
    """A stable colour per entity type: the common ones in the picker's order, others hashed."""
    if entity_type in COMMON_ENTITIES:
        return _PALETTE[COMMON_ENTITIES.index(entity_type) % len(_PALETTE)]
    return _PALETTE[sum(map(ord, entity_type)) % len(_PALETTE)]


def highlight_html(segments: Sequence[Segment]) -> str:
    """The text as HTML with each finding marked. Every piece of the text is escaped: a document
    or a pasted text must never inject markup into the console."""
    parts: list[str] = []
    for s in segments:
        text = html.escape(s.text).replace("\n", "<br>")
        if s.entity_type is None:
            parts.append(text)
            continue
        kind = html.escape(s.entity_type)
        parts.append(
            f'<mark style="background:{colour_of(s.entity_type)};padding:0 2px;'
            f'border-radius:3px" title="{kind} · score {s.score:.2f}">{text}'
            f'<sup style="font-size:0.65em;margin-left:2px">{kind}</sup></mark>'
        )
    return f'<div style="line-height:1.9;white-space:normal">{"".join(parts)}</div>'


def findings_frame(findings: Sequence[Finding]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Entity": f.entity_type,
                "Text": f.text,
                "Start": f.start,
                "End": f.end,
                "Score": round(f.score, 2),
            }
            for f in findings
        ],
        columns=["Entity", "Text", "Start", "End", "Score"],
    )


def _counts_chart(counts: dict[str, int]) -> None:
    if not counts:
        return
    frame = pd.DataFrame({"Entity": list(counts), "Findings": list(counts.values())})
    fig = px.bar(frame, x="Entity", y="Findings", color="Entity")
    fig.update_traces(marker_color=[colour_of(e) for e in counts])
    fig.update_layout(showlegend=False, height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    st.plotly_chart(fig, width="stretch")


def _options(prefix: str) -> tuple[list[str], float]:
    c1, c2 = st.columns([3, 1])
    entities = c1.multiselect(
        "Entity types (none picked: all)",
        COMMON_ENTITIES,
        key=f"{prefix}_entities",
    )
    score = c2.slider("Minimum score", 0.0, 1.0, 0.4, step=0.05, key=f"{prefix}_min_score")
    return list(entities), float(score)


def _text_tab(actor) -> None:  # type: ignore[no-untyped-def]
    text = st.text_area(
        "Text to scan",
        height=200,
        max_chars=MAX_TEXT_CHARS,
        key="pii_text",
        placeholder="Paste an e-mail, a ticket, a contract clause...",
    )
    entities, score = _options("pii_text")
    if st.button("Scan text", type="primary", icon=":material/search:", key="pii_scan"):
        try:
            st.session_state[TEXT_SCAN_KEY] = scan_text(
                actor, text, entities=entities, min_score=score
            )
            st.session_state.pop(TEXT_ANON_KEY, None)
        except DomainError as exc:
            st.session_state.pop(TEXT_SCAN_KEY, None)
            deps.show_error(exc)
    scan: TextScan | None = st.session_state.get(TEXT_SCAN_KEY)
    if scan is None:
        return
    if not scan.findings:
        st.success("No personal data found with these settings.", icon=":material/check:")
        return
    summary = ", ".join(f"{n} {kind}" for kind, n in scan.counts.items())
    st.markdown(f"**{len(scan.findings)} findings**: {html.escape(summary)}")
    st.html(highlight_html(scan.segments))
    st.dataframe(findings_frame(scan.findings), hide_index=True, width="stretch")
    with st.container(border=True):
        st.markdown("**Anonymised preview**")
        operator = st.selectbox(
            "Operator", OPERATORS, format_func=OPERATOR_HELP.get, key="pii_operator"
        )
        if st.button("Anonymise", icon=":material/visibility_off:", key="pii_anonymise"):
            try:
                st.session_state[TEXT_ANON_KEY] = anonymise_text(
                    actor, scan.text, operator, scan.findings
                )
            except DomainError as exc:
                st.session_state.pop(TEXT_ANON_KEY, None)
                deps.show_error(exc)
        anonymised = st.session_state.get(TEXT_ANON_KEY)
        if anonymised is not None:
            st.code(anonymised, language=None, wrap_lines=True)


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def markdown_text(text: str) -> str:
    """Text from a document, shown literally inside Markdown: no links, images or emphasis."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def _document_findings(scan: DocumentScan) -> None:
    st.markdown(
        f"**{sum(scan.counts.values())} findings** ({scan.distinct} different values) in "
        f"{len(scan.chunks)} of {scan.chunks_scanned} chunks of *{markdown_text(scan.title)}*."
    )
    if not scan.chunks:
        st.success("No personal data found with these settings.", icon=":material/check:")
        return
    _counts_chart(scan.counts)
    for c in scan.chunks[:SHOWN_CHUNKS]:
        where = f"page {c.page}" if c.page is not None else f"chunk {c.ordinal + 1}"
        section = markdown_text(c.section) if c.section else "no section"
        label = f"{where} · {section} · {len(c.findings)} findings"
        with st.expander(label):
            st.html(highlight_html(c.segments))
    if len(scan.chunks) > SHOWN_CHUNKS:
        st.caption(f"The first {SHOWN_CHUNKS} chunks are shown; the table lists every finding.")
    rows = [
        {
            "Chunk": c.ordinal + 1,
            "Page": c.page,
            "Section": c.section,
            "Entity": f.entity_type,
            "Text": f.text,
            "Score": round(f.score, 2),
        }
        for c in scan.chunks
        for f in c.findings
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _document_tab(actor) -> None:  # type: ignore[no-untyped-def]
    collections = list_collections(actor)
    if not collections:
        st.info("No knowledge-base collection is open to your role.")
        return
    by_id = {c.id: c for c in collections}
    cid = st.selectbox(
        "Collection",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} · {by_id[i].documents:,} documents",
        key="pii_kb_collection",
    )
    documents = list_documents(actor, cid)
    if not documents:
        st.info(f"'{by_id[cid].name}' has no documents yet.")
        return
    docs = {d.id: d for d in documents}
    doc_id = st.selectbox(
        "Document",
        list(docs),
        format_func=lambda i: f"{docs[i].source} ({docs[i].chunks} chunks)",
        key=f"pii_kb_document_{cid}",
    )
    entities, score = _options("pii_kb")
    if st.button("Scan document", type="primary", icon=":material/search:", key="pii_kb_scan"):
        bar = st.progress(0.0, text="Scanning...")

        def on_progress(done: int, total: int) -> None:
            bar.progress(min(done / total, 1.0) if total else 1.0, text=f"{done}/{total} chunks")

        try:
            st.session_state[DOC_SCAN_KEY] = scan_document(
                actor, cid, doc_id, entities=entities, min_score=score, progress=on_progress
            )
        except DomainError as exc:
            st.session_state.pop(DOC_SCAN_KEY, None)
            deps.show_error(exc)
        bar.empty()
    scan: DocumentScan | None = st.session_state.get(DOC_SCAN_KEY)
    if scan is not None and scan.document_id == doc_id and scan.collection_id == cid:
        _document_findings(scan)


def render() -> None:
    actor = deps.page_actor(Permission.PII_SCAN)
    st.title("PII scanner")
    st.caption(
        "Find personal data (names, e-mail addresses, phone numbers, IBANs, VAT and EMŠO numbers, "
        "...) in a text or a knowledge-base document. Every scan is recorded in the audit log "
        "(counts only, never the values)."
    )
    text_tab, document_tab = st.tabs(["Text", "Knowledge-base document"])
    with text_tab:
        _text_tab(actor)
    with document_tab:
        try:
            _document_tab(actor)
        except DomainError as exc:
            deps.show_error(exc)


if __name__ == "__main__":
    render()
