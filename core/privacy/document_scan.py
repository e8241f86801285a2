"""Scanning a knowledge-base document for PII: the findings of each of its chunks, with the page
and section they came from, so a compliance officer can find them in the original.

It needs the PII scan permission and access to the document's collection (the same per-collection
roles that querying it needs); a refusal is audited like every other one. Chunks overlap by design
(`overlap_chars`), so a value near a chunk boundary may be reported in both chunks; the counts per
entity type say how many findings there are, `distinct` how many different values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.db import unit_of_work
from core.errors import NotFound
from core.privacy.engine import Finding, find_pii_batch
from core.privacy.text_scan import Segment, check_scan_options, segments
from core.rag.collections import load_for
from core.rag.models import Chunk, Document

_BATCH = 32  # chunks per engine call: progress moves, memory stays flat on long documents
# (chunks done, chunks in the document) for progress bars
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ChunkFindings:
    chunk_id: int
    ordinal: int
    page: int | None
    section: str
    text: str
    findings: list[Finding]

    @property
    def segments(self) -> list[Segment]:
        return segments(self.text, self.findings)


@dataclass(frozen=True)
class DocumentScan:
    collection_id: int
    collection: str
    document_id: int
    source: str
    title: str
    chunks_scanned: int
    chunks: list[ChunkFindings]  # only the chunks with findings, in document order
    counts: dict[str, int]  # findings per entity type, most frequent first
    distinct: int  # different (entity type, value) pairs


def scan_document(
    actor: Actor,
    collection_id: int,
    document_id: int,
    *,
    entities: Sequence[str] | None = None,
    min_score: float = 0.4,
    language: str = "en",
    progress: Progress | None = None,
) -> DocumentScan:
    """Findings in every chunk of a document; audited with counts and entity types only."""
    target = f"document:{document_id}"
    require(actor, Permission.PII_SCAN, action="privacy.document.scan", target=target)
    wanted = check_scan_options(entities, min_score)
    with unit_of_work(read_only=True) as session:
        collection = load_for(
            session, actor, collection_id, Permission.RAG_QUERY, "privacy.document.scan"
        )
        document = session.get(Document, int(document_id))
        if document is None or document.collection_id != collection.id:
            raise NotFound(
                f"Document {document_id} is not in '{collection.name}' (it may have been deleted)."
            )
        rows = session.execute(
            select(Chunk.id, Chunk.ordinal, Chunk.page, Chunk.section, Chunk.text)
            .where(Chunk.document_id == document.id)
            .order_by(Chunk.ordinal)
        ).all()
        cid, cname = collection.id, collection.name
        source, title = document.source, document.title
    found: list[ChunkFindings] = []
    total = len(rows)
    for at in range(0, total, _BATCH):
        part = rows[at : at + _BATCH]
        results = find_pii_batch(
            [r.text for r in part], entities=wanted, language=language, min_score=float(min_score)
        )
        found.extend(
            ChunkFindings(r.id, r.ordinal, r.page, r.section, r.text, f)
            for r, f in zip(part, results, strict=True)
            if f
        )
        if progress is not None:
            progress(min(at + _BATCH, total), total)
    counts = dict(Counter(f.entity_type for c in found for f in c.findings).most_common())
    distinct = len({(f.entity_type, f.text.strip().lower()) for c in found for f in c.findings})
    with unit_of_work() as session:
        record(
            session,
            actor,
            "privacy.document.scan",
            target,
            {
                "collection": cname,
                "source": source,
                "chunks": total,
                "chunks_with_pii": len(found),
                "findings": counts,
                "distinct": distinct,
                "min_score": float(min_score),
            },
        )
    return DocumentScan(cid, cname, int(document_id), source, title, total, found, counts, distinct)
