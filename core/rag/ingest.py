"""Putting documents into a collection, one atomic step per document.

For each file: extract text (page and section metadata), chunk it by structure, drop repeated
chunks, embed what is new (a chunk whose text the collection already holds reuses that vector),
then write the document, its chunks and their vectors in one transaction that also bumps the
collection's generation. Only after the commit is the in-memory index updated, and the index
files are rewritten at the end of the batch under the new generation: whatever fails, no reader
ever sees a half-indexed document (see `core.rag.store`). A file that fails is reported with the
reason and the batch goes on.

Re-ingesting a source replaces its chunks; the same bytes again are skipped as unchanged, and the
same bytes under another name are reported as a duplicate of the first.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import PurePath
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.config import get_settings
from core.db import unit_of_work
from core.errors import Conflict, DomainError, NotFound, ValidationError
from core.rag.chunking import Chunk as TextChunk
from core.rag.chunking import chunk
from core.rag.collections import load_for
from core.rag.embedders import embedder_for, validate_ref
from core.rag.extract import ExtractedDocument, extract
from core.rag.models import Chunk, Collection, Document
from core.rag.store import INDEXES, vector_bytes, vector_from
from core.text import clean_text

log = logging.getLogger(__name__)

Status = Literal["indexed", "replaced", "unchanged", "duplicate", "failed"]
# (files done, files total, current file name, step) for progress bars
Progress = Callable[[int, int, str, str], None]
SECTION_SEPARATOR = " > "


@dataclass(frozen=True)
class UploadedFile:
    name: str
    data: bytes


@dataclass(frozen=True)
class IngestReport:
    source: str
    status: Status
    message: str = ""
    document_id: int | None = None
    chunks: int = 0
    embedded: int = 0  # chunks that needed the model (the rest reused a stored vector)
    seconds: float = 0.0


def _source_name(name: str) -> str:
    value = clean_text(name, 500).strip()
    if not value:
        raise ValidationError("A document needs a file name.")
    return value


def _unique_chunks(chunks: Sequence[TextChunk]) -> list[TextChunk]:
    seen: set[str] = set()
    out: list[TextChunk] = []
    for c in chunks:
        if c.content_hash not in seen:
            seen.add(c.content_hash)
            out.append(c)
    return out


def ingest_files(
    actor: Actor,
    collection_id: int,
    files: Sequence[UploadedFile],
    progress: Progress | None = None,
) -> list[IngestReport]:
    """Extract, chunk, embed and index each file; one report per file, in order."""
    require(actor, Permission.RAG_MANAGE, action="rag.ingest", target=str(collection_id))
    limit = get_settings().rag_max_file_mb * 1024 * 1024
    reports: list[IngestReport] = []
    total = len(files)
    _warm_index(actor, collection_id)
    try:
        for done, upload in enumerate(files):
            if progress is not None:
                progress(done, total, upload.name, "reading")
            started = utcnow()
            try:
                source = _source_name(upload.name)
                report = _ingest_bytes(
                    actor, collection_id, source, upload.data, limit, progress, (done, total)
                )
            except DomainError as exc:
                report = IngestReport(upload.name, "failed", str(exc))
            except Exception as exc:  # one bad file must not stop the batch
                log.exception("ingesting %s failed", upload.name)
                report = IngestReport(
                    upload.name, "failed", f"Unexpected error ({type(exc).__name__}); see the log."
                )
            seconds = (utcnow() - started).total_seconds()
            reports.append(replace(report, seconds=round(seconds, 3)))
        if progress is not None:
            progress(total, total, "", "done")
    finally:
        _finish_indexes(collection_id)
    return reports


def _warm_index(actor: Actor, collection_id: int) -> None:
    """Have the index in memory before the batch, so each commit updates it in place."""
    with unit_of_work(read_only=True) as session:
        c = load_for(session, actor, collection_id, Permission.RAG_MANAGE, "rag.ingest")
        if c.dimension:
            INDEXES.get(session, c.id, c.generation, c.dimension)


def _finish_indexes(collection_id: int) -> None:
    try:
        with unit_of_work(read_only=True) as session:
            row = session.execute(
                select(Collection.generation, Collection.dimension).where(
                    Collection.id == collection_id
                )
            ).first()
            if row is not None and row[1]:
                INDEXES.finish(session, collection_id, int(row[0]), int(row[1]))
    except DomainError:
        INDEXES.forget(collection_id)  # the next search rebuilds from the database


def _ingest_bytes(
    actor: Actor,
    collection_id: int,
    source: str,
    data: bytes,
    limit: int,
    progress: Progress | None,
    position: tuple[int, int],
) -> IngestReport:
    sha = hashlib.sha256(data).hexdigest()
    with unit_of_work(read_only=True) as session:
        c = load_for(session, actor, collection_id, Permission.RAG_MANAGE, "rag.ingest")
        same_source = session.scalar(
            select(Document).where(Document.collection_id == c.id, Document.source == source)
        )
        if same_source is not None and same_source.sha256 == sha:
            return IngestReport(
                source,
                "unchanged",
                "Already indexed with the same content.",
                same_source.id,
                same_source.chunk_count,
            )
        twin = session.scalar(
            select(Document.source).where(
                Document.collection_id == c.id, Document.sha256 == sha, Document.source != source
            )
        )
        if twin is not None:
            return IngestReport(source, "duplicate", f"Same content as '{twin}', already indexed.")
    extracted = extract(PurePath(source).name, data, max_bytes=limit)
    return ingest_extracted(
        actor,
        collection_id,
        source,
        extracted,
        sha256=sha,
        size_bytes=len(data),
        progress=progress,
        position=position,
    )


def ingest_extracted(
    actor: Actor,
    collection_id: int,
    source: str,
    doc: ExtractedDocument,
    *,
    sha256: str,
    size_bytes: int,
    doc_date: datetime | None = None,
    progress: Progress | None = None,
    position: tuple[int, int] = (0, 1),
) -> IngestReport:
    """Index an already extracted document (the demo seeder builds GDPR articles this way)."""
    require(actor, Permission.RAG_MANAGE, action="rag.ingest", target=str(collection_id))
    with unit_of_work(read_only=True) as session:
        c = load_for(session, actor, collection_id, Permission.RAG_MANAGE, "rag.ingest")
        model, dimension = c.embedding_model, c.dimension
        chunk_chars, overlap = c.chunk_chars, c.overlap_chars
    pieces = _unique_chunks(chunk(doc, max_chars=chunk_chars, overlap_chars=overlap))
    if not pieces:
        raise ValidationError(f"{source} has no text to index.")
    vectors, embedded = _vectors_for(
        collection_id, model, dimension, pieces, progress, position, source
    )
    dimension = int(vectors.shape[1])
    if progress is not None:
        progress(position[0], position[1], source, "indexing")
    report = _commit(
        actor, collection_id, source, doc, pieces, vectors, sha256, size_bytes, doc_date
    )
    return replace(report, embedded=embedded)


def _vectors_for(
    collection_id: int,
    model: str,
    dimension: int,
    pieces: Sequence[TextChunk],
    progress: Progress | None,
    position: tuple[int, int],
    source: str,
) -> tuple[npt.NDArray[Any], int]:
    """One unit vector per chunk: stored ones for texts the collection holds, the model's for
    the rest; and how many needed the model."""
    hashes = [p.content_hash for p in pieces]
    known: dict[str, bytes] = {}
    with unit_of_work(read_only=True) as session:
        for start in range(0, len(hashes), 500):
            stmt = select(Chunk.content_hash, Chunk.vector).where(
                Chunk.collection_id == collection_id,
                Chunk.content_hash.in_(hashes[start : start + 500]),
            )
            for h, v in session.execute(stmt):
                known.setdefault(str(h), bytes(v))
    todo = [i for i, p in enumerate(pieces) if p.content_hash not in known]
    fresh: npt.NDArray[Any] | None = None
    if todo:

        def on_batch(done: int, total: int) -> None:
            if progress is not None:
                progress(position[0], position[1], source, f"embedding {done}/{total} chunks")

        fresh = embedder_for(model).embed([_embed_text(pieces[i]) for i in todo], on_batch)
        if dimension and fresh.shape[1] != dimension:
            raise ValidationError(
                f"The embedding model returned {fresh.shape[1]}-dimensional vectors, the "
                f"collection holds {dimension}: re-embed the collection or fix its model."
            )
        dimension = int(fresh.shape[1])
    out = np.zeros((len(pieces), dimension), dtype=np.float32)
    by_position = dict(zip(todo, range(len(todo)), strict=True))
    for i, p in enumerate(pieces):
        if i in by_position:
            assert fresh is not None
            out[i] = fresh[by_position[i]]
        else:
            out[i] = vector_from(known[p.content_hash], dimension)
    return out, len(todo)


def embed_text(section: str, text: str) -> str:
    """What the model sees: the section's heading path, then the text (headings carry much of a
    chunk's topic, e.g. "Article 12 - Transparent information ..."). Built from the stored
    `section` string, so re-embedding from the database gives the model the same input."""
    return f"{section}\n{text}" if section else text


def _embed_text(piece: TextChunk) -> str:
    return embed_text(_section(piece), piece.text)


def _section(piece: TextChunk) -> str:
    return clean_text(SECTION_SEPARATOR.join(piece.heading_path), 500)


@dataclass(frozen=True)
class _Written:
    document: Document
    replaced: bool
    removed: list[int]
    added: list[tuple[int, npt.NDArray[Any]]]


def write_document(
    session: Session,
    c: Collection,
    source: str,
    doc: ExtractedDocument,
    pieces: Sequence[TextChunk],
    vectors: npt.NDArray[Any],
    *,
    sha256: str,
    size_bytes: int,
    uploaded_by: str,
    doc_date: datetime | None = None,
) -> _Written:
    """Write (or replace) one document with its chunks and vectors inside `session`, and bump
    the collection's generation. The caller owns the transaction and the audit entry."""
    if c.dimension and c.dimension != vectors.shape[1]:
        raise ValidationError(
            f"'{c.name}' holds {c.dimension}-dimensional vectors; these have "
            f"{vectors.shape[1]}. Re-embed the collection first."
        )
    now = utcnow()
    pages = {p.page for p in pieces if p.page is not None}
    existing = session.scalar(
        select(Document).where(Document.collection_id == c.id, Document.source == source)
    )
    removed: list[int] = []
    if existing is not None:
        removed = list(session.scalars(select(Chunk.id).where(Chunk.document_id == existing.id)))
        session.execute(delete(Chunk).where(Chunk.document_id == existing.id))
        document = existing
    else:
        document = Document(collection_id=c.id, source=source, created_at=now)
        session.add(document)
    document.title = clean_text(doc.title, 300) or source
    document.mime = doc.mime
    document.size_bytes = size_bytes
    document.sha256 = sha256
    document.pages = max(pages) if pages else None
    document.chunk_count = len(pieces)
    document.doc_date = doc_date or now
    document.uploaded_by = uploaded_by
    document.updated_at = now
    session.flush()
    rows = [
        Chunk(
            document_id=document.id,
            collection_id=c.id,
            ordinal=p.ordinal,
            text=p.text,
            page=p.page,
            section=_section(p),
            content_hash=p.content_hash,
            vector=vector_bytes(vectors[i]),
        )
        for i, p in enumerate(pieces)
    ]
    session.add_all(rows)
    session.flush()
    c.dimension = int(vectors.shape[1])
    c.generation = c.generation + 1
    c.updated_at = now
    added = [(int(r.id), vectors[i]) for i, r in enumerate(rows)]
    return _Written(document, existing is not None, removed, added)


def _commit(
    actor: Actor,
    collection_id: int,
    source: str,
    doc: ExtractedDocument,
    pieces: Sequence[TextChunk],
    vectors: npt.NDArray[Any],
    sha256: str,
    size_bytes: int,
    doc_date: datetime | None,
) -> IngestReport:
    with unit_of_work() as session:
        c = load_for(session, actor, collection_id, Permission.RAG_MANAGE, "rag.ingest")
        before = c.generation
        written = write_document(
            session,
            c,
            source,
            doc,
            pieces,
            vectors,
            sha256=sha256,
            size_bytes=size_bytes,
            uploaded_by=actor.username,
            doc_date=doc_date,
        )
        record(
            session,
            actor,
            "rag.document.replace" if written.replaced else "rag.document.add",
            f"document:{written.document.id}",
            {"collection": c.name, "source": source, "chunks": len(pieces), "sha256": sha256},
        )
        after, document_id, pages = c.generation, written.document.id, written.document.pages
    INDEXES.apply(collection_id, before, after, written.removed, written.added)
    return IngestReport(
        source,
        "replaced" if written.replaced else "indexed",
        f"{len(pieces)} chunks" + (f" on {pages} pages" if pages else ""),
        document_id,
        len(pieces),
    )


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    source: str
    title: str
    mime: str
    size_bytes: int
    pages: int | None
    chunks: int
    doc_date: datetime
    uploaded_by: str
    updated_at: datetime


def list_documents(actor: Actor, collection_id: int) -> list[DocumentInfo]:
    require(actor, Permission.RAG_QUERY, action="rag.document.list", target=str(collection_id))
    with unit_of_work(read_only=True) as session:
        c = load_for(session, actor, collection_id, Permission.RAG_QUERY, "rag.document.list")
        docs = session.scalars(
            select(Document).where(Document.collection_id == c.id).order_by(Document.source)
        ).all()
        return [
            DocumentInfo(
                d.id,
                d.source,
                d.title,
                d.mime,
                d.size_bytes,
                d.pages,
                d.chunk_count,
                d.doc_date,
                d.uploaded_by,
                d.updated_at,
            )
            for d in docs
        ]


def delete_document(actor: Actor, collection_id: int, document_id: int) -> None:
    """Remove a document with its chunks and their vectors."""
    require(actor, Permission.RAG_MANAGE, action="rag.document.delete", target=str(document_id))
    with unit_of_work() as session:
        c = load_for(session, actor, collection_id, Permission.RAG_MANAGE, "rag.document.delete")
        document = session.get(Document, int(document_id))
        if document is None or document.collection_id != c.id:
            raise NotFound(f"Document {document_id} is not in '{c.name}' (already deleted?).")
        removed = list(session.scalars(select(Chunk.id).where(Chunk.document_id == document.id)))
        session.execute(delete(Chunk).where(Chunk.document_id == document.id))
        source = document.source
        session.delete(document)
        before = c.generation
        c.generation = before + 1
        c.updated_at = utcnow()
        record(
            session,
            actor,
            "rag.document.delete",
            f"document:{document_id}",
            {"collection": c.name, "source": source, "chunks": len(removed)},
        )
        after = c.generation
    INDEXES.apply(collection_id, before, after, removed, [])
    _finish_indexes(collection_id)


def switch_embedding_model(
    actor: Actor,
    collection_id: int,
    model: str,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Re-embed every chunk of a collection with `model` (e.g. a tuned one) and switch the
    collection to it in one transaction; searches keep using the old vectors until it commits.
    Returns the number of chunks re-embedded."""
    require(
        actor, Permission.RAG_MANAGE, action="rag.collection.reembed", target=str(collection_id)
    )
    ref = validate_ref(model)
    with unit_of_work(read_only=True) as session:
        c = load_for(session, actor, collection_id, Permission.RAG_MANAGE, "rag.collection.reembed")
        generation = c.generation
        rows = session.execute(
            select(Chunk.id, Chunk.section, Chunk.text)
            .where(Chunk.collection_id == c.id)
            .order_by(Chunk.id)
        ).all()
    ids = [int(r[0]) for r in rows]
    vectors = (
        embedder_for(ref).embed([embed_text(r[1], r[2]) for r in rows], progress)
        if rows
        else np.zeros((0, 384), dtype=np.float32)
    )
    with unit_of_work() as session:
        c = load_for(session, actor, collection_id, Permission.RAG_MANAGE, "rag.collection.reembed")
        if c.generation != generation:
            raise Conflict(
                f"'{c.name}' changed while it was being re-embedded (documents were added or "
                "deleted): run the switch again."
            )
        for chunk_id, vector in zip(ids, vectors, strict=True):
            session.execute(
                update(Chunk).where(Chunk.id == chunk_id).values(vector=vector_bytes(vector))
            )
        old = c.embedding_model
        c.embedding_model = ref
        c.dimension = int(vectors.shape[1]) if rows else c.dimension
        c.generation = generation + 1
        c.updated_at = utcnow()
        record(
            session,
            actor,
            "rag.collection.reembed",
            f"collection:{c.id}",
            {"from": old, "to": ref, "chunks": len(ids)},
        )
    INDEXES.forget(collection_id)
    _finish_indexes(collection_id)
    return len(ids)
