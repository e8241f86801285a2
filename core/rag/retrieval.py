"""Search a collection: embed the query, take candidates from the dense (FAISS) and lexical (BM25)
indexes, fuse them with the collection's method, and return passages with their metadata.

Relevance: fused scores are relative (the best passage of any query scores high), so whether
anything relevant was found is judged on the absolute cosine similarity between the query and the
best passages, against the collection's floor (`min_relevance`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.db import unit_of_work
from core.errors import ValidationError
from core.rag.collections import load_for
from core.rag.embedders import embedder_for
from core.rag.fusion import alpha_fusion, reciprocal_rank_fusion
from core.rag.models import Chunk, Collection, Document
from core.rag.store import INDEXES, vector_from
from core.text import clean_text

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")
MAX_QUERY_CHARS = 2000
MAX_K = 50
DEPTH = 100  # candidates from each retriever before fusion


@dataclass(frozen=True)
class Filters:
    """Restrict a search to some documents: by source (file name) and by document date."""

    sources: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None  # inclusive

    @property
    def active(self) -> bool:
        return bool(self.sources) or self.date_from is not None or self.date_to is not None


@dataclass(frozen=True)
class Passage:
    number: int  # 1-based position, the [n] an answer cites
    chunk_id: int
    document_id: int
    source: str
    title: str
    page: int | None
    section: str
    text: str
    score: float  # fused score (its scale depends on the fusion method)
    relevance: float  # cosine similarity between query and passage
    lexical_rank: int | None  # 1-based rank in the BM25 list, None if BM25 did not find it
    dense_rank: int | None

    @property
    def location(self) -> str:
        parts = [self.source]
        if self.section:  # the innermost heading: "Article 12(3)", not the whole path
            parts.append(self.section.rsplit(" > ", 1)[-1])
        if self.page is not None:
            parts.append(f"p. {self.page}")
        return " · ".join(parts)


@dataclass(frozen=True)
class Retrieval:
    collection_id: int
    collection_name: str
    query: str
    mode: Mode
    passages: list[Passage]
    top_relevance: float
    min_relevance: float
    embed_ms: float
    search_ms: float
    candidates: dict[str, int] = field(default_factory=dict)

    @property
    def relevant(self) -> bool:
        return bool(self.passages) and self.top_relevance >= self.min_relevance


def clean_query(query: str) -> str:
    text = clean_text(query, MAX_QUERY_CHARS + 1).strip()
    if not text:
        raise ValidationError("Type a question or search terms first.")
    if len(text) > MAX_QUERY_CHARS:
        raise ValidationError(f"Queries are limited to {MAX_QUERY_CHARS:,} characters.")
    return text


def _allowed_ids(session: Any, collection_id: int, filters: Filters) -> set[int] | None:
    if not filters.active:
        return None
    stmt = (
        select(Chunk.id)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.collection_id == collection_id)
    )
    if filters.sources:
        stmt = stmt.where(Document.source.in_(list(filters.sources)))
    if filters.date_from is not None:
        stmt = stmt.where(Document.doc_date >= datetime.combine(filters.date_from, dtime(), UTC))
    if filters.date_to is not None:
        end = datetime.combine(filters.date_to + timedelta(days=1), dtime(), UTC)
        stmt = stmt.where(Document.doc_date < end)
    return {int(i) for i in session.scalars(stmt)}


def _fuse(
    c: Collection, mode: Mode, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    if mode == "dense":
        return dense
    if mode == "lexical":
        return lexical
    if c.fusion == "rrf":
        return reciprocal_rank_fusion([dense, lexical], k=c.rrf_k, weights=[c.alpha, 1 - c.alpha])
    normalization: Any = c.fusion
    return alpha_fusion(dense, lexical, alpha=c.alpha, normalization=normalization)


def search(
    actor: Actor,
    collection_id: int,
    query: str,
    *,
    k: int = 5,
    mode: Mode = "hybrid",
    filters: Filters | None = None,
) -> Retrieval:
    """The `k` best passages for `query`, best first, with timings."""
    require(actor, Permission.RAG_QUERY, action="rag.search", target=str(collection_id))
    text = clean_query(query)
    if not 1 <= k <= MAX_K:
        raise ValidationError(f"Ask for between 1 and {MAX_K} passages.")
    if mode not in MODES:
        raise ValidationError(f"Unknown search mode {mode!r}: use one of {', '.join(MODES)}.")
    filters = filters or Filters()
    with unit_of_work(read_only=True) as session:
        c = load_for(session, actor, collection_id, Permission.RAG_QUERY, "rag.search")
        name, floor, model = c.name, c.min_relevance, c.embedding_model
        if not c.dimension:  # nothing ingested yet
            return Retrieval(c.id, name, text, mode, [], 0.0, floor, 0.0, 0.0)
        index = INDEXES.get(session, c.id, c.generation, c.dimension)
        allowed = _allowed_ids(session, c.id, filters)
        started = time.perf_counter()
        # lexical mode embeds the query too: relevance is judged by cosine in every mode
        vector = embedder_for(model).embed([text])[0]
        embedded = time.perf_counter()
        dense = index.search_dense(vector, DEPTH, allowed) if mode != "lexical" else []
        lexical = index.search_lexical(text, DEPTH, allowed) if mode != "dense" else []
        fused = _fuse(c, mode, dense, lexical)
        passages = _passages(session, c.id, fused, dense, lexical, vector, c.dimension, k)
        finished = time.perf_counter()
    top = max((p.relevance for p in passages), default=0.0)
    return Retrieval(
        collection_id=collection_id,
        collection_name=name,
        query=text,
        mode=mode,
        passages=passages,
        top_relevance=top,
        min_relevance=floor,
        embed_ms=(embedded - started) * 1000,
        search_ms=(finished - embedded) * 1000,
        candidates={"dense": len(dense), "lexical": len(lexical), "fused": len(fused)},
    )


def _passages(
    session: Any,
    collection_id: int,
    fused: Sequence[tuple[int, float]],
    dense: Sequence[tuple[int, float]],
    lexical: Sequence[tuple[int, float]],
    vector: npt.NDArray[Any],
    dimension: int,
    k: int,
) -> list[Passage]:
    """Rows for the best fused ids, skipping repeats of a text already taken."""
    head = list(fused[: k * 3])
    if not head:
        return []
    ids = [i for i, _ in head]
    stmt = (
        select(Chunk, Document.source, Document.title)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.id.in_(ids), Chunk.collection_id == collection_id)
    )
    rows = {row[0].id: row for row in session.execute(stmt)}
    dense_rank = {i: r for r, (i, _) in enumerate(dense, start=1)}
    lexical_rank = {i: r for r, (i, _) in enumerate(lexical, start=1)}
    seen: set[str] = set()
    out: list[Passage] = []
    for chunk_id, score in head:
        row = rows.get(chunk_id)
        if row is None or row[0].content_hash in seen:
            continue  # deleted since the index was read, or the same text in another document
        ch, source, title = row
        seen.add(ch.content_hash)
        relevance = float(np.dot(vector_from(ch.vector, dimension), vector))
        out.append(
            Passage(
                number=len(out) + 1,
                chunk_id=ch.id,
                document_id=ch.document_id,
                source=source,
                title=title,
                page=ch.page,
                section=ch.section,
                text=ch.text,
                score=float(score),
                relevance=relevance,
                lexical_rank=lexical_rank.get(chunk_id),
                dense_rank=dense_rank.get(chunk_id),
            )
        )
        if len(out) == k:
            break
    return out
