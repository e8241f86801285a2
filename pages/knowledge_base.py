"""Knowledge base: ask a collection, get a streamed answer citing numbered passages; rate it;
read the query log."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import date

import pandas as pd
import streamlit as st

from console import deps
from core.auth.roles import Permission, has_permission
from core.errors import DomainError
from core.money import format_usd, micros_to_usd
from core.rag import answers
from core.rag.collections import CollectionInfo, list_collections
from core.rag.ingest import list_documents
from core.rag.retrieval import MAX_K, MODES, Filters, Passage, Retrieval

LAST_KEY = "kb_last"  # the last answer, shown again on reruns (rating, changing options)
MODE_HELP = {
    "hybrid": "hybrid (meaning + exact words)",
    "dense": "dense (meaning only)",
    "lexical": "lexical (exact words, BM25)",
}
RATING_LABELS = {1: "helpful", -1: "not helpful"}


@dataclass(frozen=True)
class Shown:
    """What the page keeps of the last question to draw it again after a rerun. (Kept in
    session state as a dict: each run re-executes this script, so a class defined here is a new
    class every run.)"""

    collection_id: int
    question: str
    answer: answers.Answer
    top_relevance: float
    min_relevance: float
    rating: int | None = None

    def keep(self) -> None:
        st.session_state[LAST_KEY] = {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def kept(cls) -> Shown | None:
        value = st.session_state.get(LAST_KEY)
        return cls(**value) if isinstance(value, dict) else None


def _escape(text: str) -> str:
    """Passage text shown as text: markdown characters in documents must not format the page."""
    for ch in "\\`*_{}[]<>#|~$":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", "  \n")


def _options(actor, collection: CollectionInfo) -> tuple[int, str, Filters]:  # type: ignore[no-untyped-def]
    cid = collection.id
    with st.expander("Search options", icon=":material/tune:"):
        c1, c2 = st.columns(2)
        k = c1.slider("Passages to retrieve (k)", 1, min(MAX_K, 20), 5, key="kb_k")
        mode = c2.selectbox("Search mode", MODES, format_func=MODE_HELP.get, key="kb_mode")
        sources = [d.source for d in list_documents(actor, cid)]
        c3, c4 = st.columns(2)
        chosen = c3.multiselect(
            "Only these documents", sources, key=f"kb_sources_{cid}", placeholder="All documents"
        )
        period = c4.date_input("Document date between", value=(), key=f"kb_dates_{cid}")
    date_from: date | None = None
    date_to: date | None = None
    if isinstance(period, tuple) and period:
        date_from = period[0]
        date_to = period[1] if len(period) > 1 else None
    return int(k), str(mode), Filters(tuple(chosen), date_from, date_to)


def _ask(actor, cid: int, question: str, k: int, mode: str, filters: Filters) -> None:  # type: ignore[no-untyped-def]
    """Retrieve, then stream the answer as it is written; keep it for later reruns."""
    st.session_state.pop(LAST_KEY, None)
    with st.chat_message("user"):
        st.markdown(_escape(question))
    events = answers.ask_stream(actor, cid, question, k=k, mode=mode, filters=filters)  # type: ignore[arg-type]
    with st.spinner("Searching the collection..."):
        first = next(events)
    retrieval: Retrieval | None = first.retrieval
    assert retrieval is not None
    final: list[answers.Answer] = []

    def deltas() -> Iterator[str]:
        for event in events:
            if event.delta:
                yield event.delta
            if event.answer is not None:
                final.append(event.answer)

    if retrieval.relevant:
        with st.chat_message("assistant"):
            st.write_stream(deltas())
    else:
        for _ in deltas():  # nothing is generated: this only collects the logged answer
            pass
    Shown(cid, retrieval.query, final[0], retrieval.top_relevance, retrieval.min_relevance).keep()


def _passage(p: Passage, cited: bool) -> None:
    label = f"[{p.number}] {p.location}" + (" · cited" if cited else "")
    with st.expander(label, expanded=cited):
        lexical = f"#{p.lexical_rank}" if p.lexical_rank is not None else "not found"
        dense = f"#{p.dense_rank}" if p.dense_rank is not None else "not found"
        st.caption(
            f"{p.title} · fused score {p.score:.4f} · cosine relevance {p.relevance:.3f} · "
            f"lexical rank {lexical} · dense rank {dense}"
        )
        st.markdown(_escape(p.text))


def _show(actor, shown: Shown, streamed: bool) -> None:  # type: ignore[no-untyped-def]
    a = shown.answer
    if not streamed:
        with st.chat_message("user"):
            st.markdown(_escape(shown.question))
    if a.status == "not_found":
        st.warning(a.text, icon=":material/search_off:")
        st.caption(
            f"Not found: the best passage's cosine relevance is {shown.top_relevance:.2f}, under "
            f"this collection's floor of {shown.min_relevance:.2f}, so no model was asked."
        )
    elif a.status == "error":
        if a.text:
            with st.chat_message("assistant"):
                st.markdown(a.text)
        st.error(a.error, icon=":material/error:")
    elif not streamed:
        with st.chat_message("assistant"):
            st.markdown(a.text)
    if a.status == "answered":
        if a.citations:
            st.markdown(
                "**Sources:** "
                + " · ".join(f"\\[{p.number}\\] {_escape(p.location)}" for p in a.citations)
            )
        else:
            st.caption("The answer cites no passage: check it against the passages below.")
    c = st.columns(4)
    c[0].metric("Embed", f"{a.embed_ms:,.0f} ms")
    c[1].metric("Search", f"{a.search_ms:,.0f} ms")
    c[2].metric("Generate", f"{a.generate_ms:,.0f} ms")
    c[3].metric("Cost", format_usd(a.cost_micros))
    if a.deployment:
        st.caption(f"Answered by {a.deployment} ({a.model}) · question #{a.query_id}")
    else:
        st.caption(f"Question #{a.query_id}")
    if a.passages:
        if a.status == "not_found":
            st.caption("Closest passages (below the relevance floor):")
        else:
            st.caption(f"Retrieved passages ({len(a.passages)}):")
        for p in a.passages:
            _passage(p, p.number in a.cited)
    _rating(actor, shown)


def _rating(actor, shown: Shown) -> None:  # type: ignore[no-untyped-def]
    qid = shown.answer.query_id
    with st.container(border=True):
        st.caption("Was this answer helpful? Ratings help tune the search.")
        comment = st.text_input(
            "Comment (optional)", max_chars=500, key=f"kb_comment_{qid}", placeholder="Why?"
        )
        c1, c2, _ = st.columns([1, 1, 3])
        up = c1.button("👍 Helpful", key=f"kb_up_{qid}", width="stretch")
        down = c2.button("👎 Not helpful", key=f"kb_down_{qid}", width="stretch")
        if up or down:
            rating = 1 if up else -1
            try:
                answers.rate_answer(actor, qid, rating, comment)
            except DomainError as exc:
                deps.show_error(exc)
                return
            replace(shown, rating=rating).keep()
            st.success(f"Thanks: rated {RATING_LABELS[rating]}.", icon=":material/check:")
        elif shown.rating is not None:
            st.caption(f"You rated this answer {RATING_LABELS[shown.rating]}; you can change it.")


def _ask_tab(actor, collections: list[CollectionInfo]) -> None:  # type: ignore[no-untyped-def]
    by_id = {c.id: c for c in collections}
    cid = st.selectbox(
        "Collection",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} · {by_id[i].documents:,} documents",
        key="kb_collection",
    )
    collection = by_id[cid]
    if collection.description:
        st.caption(collection.description)
    k, mode, filters = _options(actor, collection)
    question = st.chat_input(f"Ask {collection.name} a question", key="kb_question")
    if question:
        _ask(actor, cid, question, k, mode, filters)
    shown = Shown.kept()
    if shown is not None and shown.collection_id == cid:
        _show(actor, shown, streamed=bool(question))
    elif not collection.documents:
        st.info(f"'{collection.name}' has no documents yet: upload some on the Documents page.")


def _log_tab(actor, collections: list[CollectionInfo]) -> None:  # type: ignore[no-untyped-def]
    manager = has_permission(actor.role, Permission.RAG_MANAGE)
    names = {c.id: c.name for c in collections}
    c1, c2 = st.columns([3, 1])
    scope = c1.selectbox(
        "Collection",
        [0, *names],
        format_func=lambda i: names.get(i, "All collections"),
        key="kb_log_collection",
    )
    mine = c2.toggle("Only my questions", key="kb_log_mine", value=False) if manager else True
    records = answers.query_log(actor, scope or None, mine=mine)
    if not records:
        st.info("No questions asked yet.")
        return
    rows = [
        {
            "#": r.id,
            "Time": deps.local_time(r.ts),
            "User": r.actor,
            "Collection": r.collection,
            "Question": r.question,
            "Status": r.status.replace("_", " "),
            "Cited": r.cited.replace(",", " "),
            "Top relevance": round(r.top_relevance, 3),
            "Embed ms": round(r.embed_ms),
            "Search ms": round(r.search_ms),
            "Generate ms": round(r.generate_ms),
            "Deployment": r.deployment,
            "Cost": format_usd(r.cost_micros),
            "Rating": RATING_LABELS.get(r.rating or 0, ""),
            "Comment": r.rating_comment,
            "Answer": r.answer,
        }
        for r in records
    ]
    frame = pd.DataFrame(rows)
    st.write(f"{len(frame):,} questions, newest first")
    st.dataframe(frame.drop(columns=["Answer"]), hide_index=True, width="stretch")
    csv = frame.assign(Cost=[str(micros_to_usd(r.cost_micros)) for r in records]).rename(
        columns={"Cost": "Cost (USD)"}
    )
    st.download_button(
        "Download CSV",
        csv.to_csv(index=False),
        "knowledge_base_questions.csv",
        "text/csv",
        icon=":material/file_download:",
        key="kb_log_csv",
    )


def render() -> None:
    actor = deps.page_actor(Permission.RAG_QUERY)
    st.title("Knowledge base")
    st.caption(
        "Ask the document collections open to your role: answers cite the passages they use, "
        "and say so when the documents do not cover the question."
    )
    try:
        collections = list_collections(actor)
        if not collections:
            st.info(
                "No collection is open to your role yet. Create one on the Documents page, or "
                "ask its owner for access."
            )
            return
        manager = has_permission(actor.role, Permission.RAG_MANAGE)
        ask_tab, log_tab = st.tabs(["Ask", "Query log" if manager else "My recent questions"])
        with ask_tab:
            try:
                _ask_tab(actor, collections)
            except DomainError as exc:
                deps.show_error(exc)
        with log_tab:
            _log_tab(actor, collections)
    except DomainError as exc:
        deps.show_error(exc)


if __name__ == "__main__":
    render()
