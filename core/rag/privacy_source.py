"""The knowledge base as a data source: passages (chunks) that mention the subject.

A passage mentions the subject when its text or heading contains their e-mail or full name
(case-insensitive; any whitespace between the parts of the name). Access hands those passages
over. Erasure keeps the documents (they are the tenant's content) but rewrites the passages:
each mention becomes "[erased subject]", and the identifiers the PII engine finds in the same
sentence as a mention (postal address, phone, e-mail, IBAN, card, national ids, birth date)
become "[erased]".
The changed passages are re-embedded and the collection's generation is bumped in the same
transaction, so no index of the old generation (which still holds the old text) is ever served
again; after the commit the in-memory index is updated and the new generation saved.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.clock import utcnow
from core.db import unit_of_work
from core.errors import DomainError, ValidationError
from core.privacy.models import DataSubject
from core.privacy.sources import (
    PLACEHOLDER,
    ErasureOutcome,
    acting_actor,
    mention_patterns,
    mention_spans,
    register_source,
)
from core.rag.chunking import content_hash
from core.rag.collections import may_access
from core.rag.embedders import embedder_for
from core.rag.ingest import embed_text
from core.rag.models import Chunk, Collection, Document
from core.rag.store import INDEXES, vector_bytes

IDENTIFIER_PLACEHOLDER = "[erased]"
# Identifier-like entities only: a PERSON or LOCATION next to the subject may be someone else.
IDENTIFIER_ENTITIES = (
    "ADDRESS",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "IBAN_CODE",
    "CREDIT_CARD",
    "IP_ADDRESS",
    "US_SSN",
    "EU_VAT",
    "SI_EMSO",
    "SI_TAX_NUMBER",
)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
REASON = (
    "Mentions of the subject (e-mail, name) and identifiers next to them were replaced in the "
    "passages, which were re-embedded so search no longer finds them; the documents themselves "
    "are the tenant's content and stay."
)


def needles(subject: DataSubject) -> list[str]:
    """Substrings to pre-select candidate passages in SQL (the patterns then decide): the
    e-mail and the name's longest word (a line break may sit between the name's words)."""
    parts = sorted(subject.full_name.split(), key=len, reverse=True)
    name = parts[0] if parts and len(parts[0]) >= 3 else subject.full_name.strip()
    return [w for w in (subject.email, name) if w]


def like_any(column: Any, words: list[str]) -> list[ColumnElement[bool]]:
    # lower() folds only ASCII on SQLite, so also try the usual spellings as they are
    out: list[ColumnElement[bool]] = []
    for needle in words:
        out.append(func.lower(column).contains(needle.lower(), autoescape=True))
        for variant in {needle, needle.upper(), needle.title(), needle.capitalize()}:
            out.append(column.contains(variant, autoescape=True))
    return out


def matching_chunks(session: Session, subject: DataSubject) -> list[Chunk]:
    patterns = mention_patterns(subject)
    words = needles(subject)
    if not patterns or not words:
        return []
    stmt = (
        select(Chunk)
        .where(or_(*like_any(Chunk.text, words), *like_any(Chunk.section, words)))
        .order_by(Chunk.id)
    )
    return [
        c
        for c in session.scalars(stmt)
        if any(p.search(c.text) or p.search(c.section) for p in patterns)
    ]


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _SENTENCE_BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [s for s in spans if s[1] > s[0]]


def _birth_dates(subject: DataSubject) -> list[str]:
    born = subject.birth_date
    if born is None:
        return []
    return [born.isoformat(), born.strftime("%d.%m.%Y"), born.strftime("%d/%m/%Y")]


def _identifier_spans(text: str, near: list[tuple[int, int]], subject: DataSubject) -> list[Any]:
    """Spans of identifiers inside the sentences that contain a mention."""
    from core.privacy.engine import find_pii_batch

    sentences = [s for s in _sentences(text) if any(a < s[1] and b > s[0] for a, b in near)]
    # any language: a passage in German must not make the erasure fail
    found = find_pii_batch(
        [text[a:b] for a, b in sentences],
        entities=IDENTIFIER_ENTITIES,
        check_text_language=False,
    )
    spans = [
        (a + f.start, a + f.end) for (a, _), fs in zip(sentences, found, strict=True) for f in fs
    ]
    for a, b in sentences:
        for value in _birth_dates(subject):
            spans.extend(
                (a + m.start(), a + m.end()) for m in re.finditer(re.escape(value), text[a:b])
            )
    return spans


def scrub(text: str, subject: DataSubject) -> str:
    """`text` with the subject's mentions and the identifiers beside them replaced."""
    mentions = mention_spans(text, mention_patterns(subject))
    if not mentions:
        return text
    extra = [
        s
        for s in _identifier_spans(text, mentions, subject)
        if all(s[1] <= a or s[0] >= b for a, b in mentions)
    ]
    marked = sorted(
        [(a, b, PLACEHOLDER) for a, b in mentions]
        + [(a, b, IDENTIFIER_PLACEHOLDER) for a, b in extra]
    )
    out: list[str] = []
    last = 0
    for a, b, label in marked:
        if a < last:  # overlaps the previous replacement: already covered
            last = max(last, b)
            continue
        out.extend((text[last:a], label))
        last = b
    out.append(text[last:])
    return "".join(out)


@dataclass(frozen=True)
class _IndexChange:
    collection_id: int
    before: int
    after: int
    dimension: int
    ids: list[int]
    vectors: npt.NDArray[Any]


def _refresh_indexes(changes: list[_IndexChange]) -> None:
    """After the commit: update this process's index in place and save the new generation.
    Best effort: the bumped generation already keeps the old index from being served."""
    for ch in changes:
        INDEXES.apply(
            ch.collection_id,
            ch.before,
            ch.after,
            ch.ids,
            list(zip(ch.ids, ch.vectors, strict=True)),
        )
        try:
            with unit_of_work(read_only=True) as session:
                INDEXES.finish(session, ch.collection_id, ch.after, ch.dimension)
        except (DomainError, OSError):
            INDEXES.forget(ch.collection_id)


def _rewrite_collection(
    session: Session, collection_id: int, chunks: list[Chunk], subject: DataSubject
) -> _IndexChange:
    # FOR UPDATE: an ingest into the same collection waits instead of racing the generation
    c = session.get(Collection, collection_id, with_for_update=True)
    assert c is not None  # the chunks reference it (foreign key)
    texts = [scrub(ch.text, subject) for ch in chunks]
    sections = [scrub(ch.section, subject)[:500] for ch in chunks]
    vectors = embedder_for(c.embedding_model).embed(
        [embed_text(s, t) for s, t in zip(sections, texts, strict=True)]
    )
    if c.dimension and vectors.shape[1] != c.dimension:
        raise ValidationError(
            f"'{c.name}' holds {c.dimension}-dimensional vectors but its model returned "
            f"{vectors.shape[1]}: fix or re-embed the collection, then resume the erasure."
        )
    for ch, text, section, vector in zip(chunks, texts, sections, vectors, strict=True):
        ch.text, ch.section = text, section
        ch.content_hash = content_hash(text)
        ch.vector = vector_bytes(vector)
    before = c.generation
    c.generation = before + 1
    c.updated_at = utcnow()
    ids = [int(ch.id) for ch in chunks]
    return _IndexChange(c.id, before, c.generation, c.dimension, ids, np.asarray(vectors))


@register_source(order=60)
class KnowledgeBaseSource:
    name = "knowledge_base"
    label = "Knowledge base"
    description = "Passages of knowledge-base documents that mention the subject's e-mail or name."

    def prepare(self, subject_id: int, erasing: bool) -> None:
        """Load the embedding models and the PII engine before the erasure's transaction, so
        the database is not held while they load (seconds, the first time)."""
        if not erasing:
            return
        with unit_of_work(read_only=True) as session:
            subject = session.get(DataSubject, subject_id)
            chunks = matching_chunks(session, subject) if subject is not None else []
            models = set(
                session.scalars(
                    select(Collection.embedding_model).where(
                        Collection.id.in_({c.collection_id for c in chunks})
                    )
                )
            )
        if not chunks:
            return
        for model in models:
            embedder_for(model).embed(["warm-up"])
        from core.privacy.engine import find_pii_batch

        find_pii_batch(["warm-up"], entities=IDENTIFIER_ENTITIES, check_text_language=False)

    def collect(self, session: Session, subject: DataSubject) -> list[dict[str, Any]]:
        """The passages, from the collections the exporting person may open; for the others
        only how many passages were withheld (an admin, who may open all, exports all)."""
        chunks = matching_chunks(session, subject)
        collections = {c.id: c for c in session.scalars(select(Collection))}
        actor = acting_actor()
        if actor is not None:
            closed = {i for i, c in collections.items() if not may_access(actor, c)}
            withheld = Counter(c.collection_id for c in chunks if c.collection_id in closed)
            chunks = [c for c in chunks if c.collection_id not in closed]
        else:
            withheld = Counter()
        docs = _documents(session, {c.document_id for c in chunks})
        names = {i: c.name for i, c in collections.items()}
        notes = [
            {
                "collection": names.get(cid, ""),
                "withheld_passages": n,
                "reason": "the collection is not open to the exporting person's role; an "
                "admin can export it",
            }
            for cid, n in sorted(withheld.items())
        ]
        return notes + [
            {
                "collection": names.get(c.collection_id, ""),
                "document": docs[c.document_id].source if c.document_id in docs else "",
                "title": docs[c.document_id].title if c.document_id in docs else "",
                "chunk_id": c.id,
                "page": c.page,
                "section": c.section,
                "text": c.text,
            }
            for c in chunks
        ]

    def erase(self, session: Session, subject: DataSubject) -> ErasureOutcome:
        chunks = matching_chunks(session, subject)
        if not chunks:
            return ErasureOutcome("none", 0, "No knowledge-base passage mentions the subject.")
        by_collection: dict[int, list[Chunk]] = defaultdict(list)
        for ch in chunks:
            by_collection[ch.collection_id].append(ch)
        changes = [
            _rewrite_collection(session, cid, group, subject)
            for cid, group in sorted(by_collection.items())
        ]
        for doc in _documents(session, {c.document_id for c in chunks}).values():
            doc.title = scrub(doc.title, subject)[:300]
        session.flush()
        return ErasureOutcome(
            "anonymised", len(chunks), REASON, after_commit=partial(_refresh_indexes, changes)
        )


def _documents(session: Session, ids: set[int]) -> dict[int, Document]:
    if not ids:
        return {}
    return {d.id: d for d in session.scalars(select(Document).where(Document.id.in_(ids)))}
