"""Knowledge-base tables: collections, documents, chunks (with their vectors), and the query log.

The database is the source of truth: every chunk row carries its embedding (float32 bytes), so the
FAISS and BM25 files under `$OMNI_HOME/rag/` are caches that can always be rebuilt from here. A
collection's `generation` goes up with every committed change; an index file records the
generation it was built for, so a stale or half-written index is detected and rebuilt rather than
trusted. Chunk ids are the FAISS ids.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")


class Collection(Base):
    __tablename__ = "rag_collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    owner: Mapped[str] = mapped_column(String(128))
    # comma-separated role names that may query it (admins and the owner always may)
    roles: Mapped[str] = mapped_column(String(200))
    # "minilm", "tuned:<registered model>/<version>", or "openai:<model>"
    embedding_model: Mapped[str] = mapped_column(String(200), default="minilm")
    dimension: Mapped[int] = mapped_column(Integer, default=384)
    chunk_chars: Mapped[int] = mapped_column(Integer, default=1200)
    overlap_chars: Mapped[int] = mapped_column(Integer, default=200)
    # "zscore" / "minmax" score fusion weighted by `alpha` (dense), or "rrf" with `rrf_k`
    fusion: Mapped[str] = mapped_column(String(16), default="zscore")
    alpha: Mapped[float] = mapped_column(Float, default=0.5)
    rrf_k: Mapped[float] = mapped_column(Float, default=60.0)
    # best dense cosine below this: "nothing relevant enough", no generation
    min_relevance: Mapped[float] = mapped_column(Float, default=0.35)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Document(Base):
    __tablename__ = "rag_documents"
    __table_args__ = (
        UniqueConstraint("collection_id", "source", name="uq_rag_documents_source"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("rag_collections.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(500))  # file name or path as given
    title: Mapped[str] = mapped_column(String(300))
    mime: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the file's bytes
    pages: Mapped[int | None] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    # the document's own date for filters (upload time unless the source gives one)
    doc_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    uploaded_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Chunk(Base):
    __tablename__ = "rag_chunks"
    # AUTOINCREMENT on SQLite: a deleted chunk's id (its FAISS id, logged with answers) is never
    # given to another chunk
    __table_args__ = (
        Index("ix_rag_chunks_collection_hash", "collection_id", "content_hash"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("rag_documents.id", ondelete="CASCADE"), index=True
    )
    collection_id: Mapped[int] = mapped_column(ForeignKey("rag_collections.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    page: Mapped[int | None] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(String(500), default="")  # heading path, " > " joined
    content_hash: Mapped[str] = mapped_column(String(64))
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, unit length, `dimension` wide


class QueryLog(Base):
    """Every question asked: what was retrieved, what came back, how long each step took, what it
    cost, and the asker's rating."""

    __tablename__ = "rag_queries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    collection_id: Mapped[int | None] = mapped_column(
        ForeignKey("rag_collections.id", ondelete="SET NULL"), index=True
    )
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text, default="")
    # "answered", "not_found" (nothing relevant enough) or "error"
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(String(500), default="")
    # JSON list of {"chunk": id, "score": fused, "dense": cosine} in rank order
    passages: Mapped[str] = mapped_column(Text, default="[]")
    cited: Mapped[str] = mapped_column(String(200), default="")  # passage numbers, "1,3"
    top_relevance: Mapped[float] = mapped_column(Float, default=0.0)
    embed_ms: Mapped[float] = mapped_column(Float, default=0.0)
    search_ms: Mapped[float] = mapped_column(Float, default=0.0)
    generate_ms: Mapped[float] = mapped_column(Float, default=0.0)
    deployment: Mapped[str] = mapped_column(String(64), default="")
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    rating: Mapped[int | None] = mapped_column(SmallInteger)  # +1 helpful, -1 not helpful
    rating_comment: Mapped[str] = mapped_column(String(500), default="")
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
