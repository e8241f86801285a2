"""Demo knowledge base: the GDPR (99 articles, 173 recitals, `data/gdpr/`, CC-BY-4.0) as the
"Regulations" collection, one document per article and per recital, each numbered paragraph of
an article its own section ("Article 12(3)"), so answers cite the paragraph.

Embedding the ~600 chunks takes some seconds on two cores; the vectors are kept per process (by
text hash), so a second seeding in the same process (tests) does not embed again.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

from core.auth.models import User
from core.auth.roles import Role
from core.demo.registry import SeedContext, seeder
from core.rag.chunking import Chunk as TextChunk
from core.rag.chunking import chunk
from core.rag.embedders import MINILM, embedder_for
from core.rag.extract import ExtractedDocument, Section
from core.rag.ingest import _embed_text, _unique_chunks, write_document
from core.rag.models import Collection

DATA = Path(__file__).resolve().parents[2] / "data" / "gdpr"
COLLECTION = "Regulations"
ADOPTED = datetime(2016, 4, 27, tzinfo=UTC)
_PARAGRAPH = re.compile(r"^(\d+)\.\s+", re.MULTILINE)
_VECTORS: dict[str, npt.NDArray[Any]] = {}


@dataclass(frozen=True)
class SourceDocument:
    source: str
    document: ExtractedDocument
    sha256: str
    size_bytes: int


def _article(row: dict[str, Any]) -> ExtractedDocument:
    number, title = int(row["article"]), str(row["title"])
    head: tuple[str, ...] = (f"Chapter {row['chapter']} - {row['chapter_title']}",)
    if row.get("section_title"):
        head += (f"Section {row['section']} - {row['section_title']}",)
    head += (f"Article {number} - {title}",)
    text = str(row["text"]).strip()
    starts = list(_PARAGRAPH.finditer(text))
    sections: list[Section] = []
    if not starts or starts[0].start() != 0:
        sections.append(Section(text, None, head))
    else:
        for i, match in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            sections.append(
                Section(
                    text[match.start() : end].strip(),
                    None,
                    (*head, f"Article {number}({match.group(1)})"),
                )
            )
    return ExtractedDocument(f"GDPR Article {number} - {title}", "application/json", sections)


def _recital(row: dict[str, Any]) -> ExtractedDocument:
    number = int(row["recital"])
    return ExtractedDocument(
        f"GDPR Recital {number}",
        "application/json",
        [Section(str(row["text"]).strip(), None, (f"Recital {number}",))],
    )


def gdpr_documents() -> list[SourceDocument]:
    out: list[SourceDocument] = []
    for name, build, key in (
        ("articles.jsonl", _article, "article"),
        ("recitals.jsonl", _recital, "recital"),
    ):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            raw = line.encode("utf-8")
            source = f"GDPR {key.capitalize()} {int(row[key])}"
            out.append(
                SourceDocument(source, build(row), hashlib.sha256(raw).hexdigest(), len(raw))
            )
    return out


def _vectors(pieces: list[TextChunk]) -> npt.NDArray[Any]:
    todo = [p for p in pieces if p.content_hash not in _VECTORS]
    if todo:
        fresh = embedder_for(MINILM).embed([_embed_text(p) for p in todo])
        for p, v in zip(todo, fresh, strict=True):
            _VECTORS[p.content_hash] = v
    return np.stack([_VECTORS[p.content_hash] for p in pieces])


@seeder("knowledge_base", order=40)
def seed_knowledge_base(ctx: SeedContext) -> str:
    session = ctx.session
    owner = session.scalar(
        select(User.username).where(User.role == Role.COMPLIANCE_OFFICER.value).order_by(User.id)
    )
    collection = Collection(
        name=COLLECTION,
        description="Regulation (EU) 2016/679 (GDPR): articles and recitals.",
        owner=owner or "system:demo",
        roles=",".join(r.value for r in (Role.ADMIN, Role.COMPLIANCE_OFFICER, Role.ML_ENGINEER)),
        embedding_model=MINILM,
        dimension=384,
    )
    session.add(collection)
    session.flush()
    documents = gdpr_documents()
    pieces = [
        _unique_chunks(
            chunk(
                d.document, max_chars=collection.chunk_chars, overlap_chars=collection.overlap_chars
            )
        )
        for d in documents
    ]
    vectors = _vectors([p for doc_pieces in pieces for p in doc_pieces])
    at = 0
    for d, doc_pieces in zip(documents, pieces, strict=True):
        write_document(
            session,
            collection,
            d.source,
            d.document,
            doc_pieces,
            vectors[at : at + len(doc_pieces)],
            sha256=d.sha256,
            size_bytes=d.size_bytes,
            uploaded_by=collection.owner,
            doc_date=ADOPTED,
        )
        at += len(doc_pieces)
    return f"collection '{COLLECTION}': {len(documents)} documents, {at} chunks"
