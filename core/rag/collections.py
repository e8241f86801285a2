"""Collections: create, list, change settings, delete; and who may use which one.

A collection is open to the roles listed on it (plus admins and its owner). Querying needs
`rag.query` and access to the collection; changing it or its documents needs `rag.manage` and
access. Refusals are audited like every other permission check.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.audit.service import record, record_now
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission, Role, parse_role
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.rag.embedders import MINILM, validate_ref
from core.rag.models import Chunk, Collection, Document
from core.rag.store import INDEXES, collection_dir
from core.text import clean_text

FUSIONS = ("zscore", "minmax", "rrf")
_NAME = re.compile(r"^[\w][\w .,()&'-]{0,79}$")


@dataclass(frozen=True)
class CollectionInfo:
    id: int
    name: str
    description: str
    owner: str
    roles: tuple[Role, ...]
    embedding_model: str
    dimension: int
    chunk_chars: int
    overlap_chars: int
    fusion: str
    alpha: float
    rrf_k: float
    min_relevance: float
    generation: int
    documents: int
    chunks: int
    updated_at: datetime


def _roles(value: str) -> tuple[Role, ...]:
    return tuple(Role(r) for r in value.split(",") if r)


def may_access(actor: Actor, collection: Collection) -> bool:
    return (
        actor.role is Role.ADMIN
        or actor.username == collection.owner
        or actor.role in _roles(collection.roles)
    )


def load_for(
    session: Session, actor: Actor, collection_id: int, permission: Permission, action: str
) -> Collection:
    """The collection, if `actor` may use it for `permission`; audited refusal otherwise.

    `require(actor, permission)` must have been called before the unit of work opened."""
    collection = session.get(Collection, int(collection_id))
    if collection is None:
        raise NotFound(f"Collection {collection_id} does not exist (it may have been deleted).")
    if not may_access(actor, collection):
        record_now(
            actor, action, f"collection:{collection.id}", {"reason": "role"}, outcome="denied"
        )
        raise PermissionDenied(
            f"The collection '{collection.name}' is not open to your role ({actor.role.label}). "
            f"Ask its owner ({collection.owner}) or an admin for access."
        )
    return collection


def _info(session: Session, c: Collection) -> CollectionInfo:
    docs = session.scalar(select(func.count()).where(Document.collection_id == c.id)) or 0
    chunks = session.scalar(select(func.count()).where(Chunk.collection_id == c.id)) or 0
    return CollectionInfo(
        id=c.id,
        name=c.name,
        description=c.description,
        owner=c.owner,
        roles=_roles(c.roles),
        embedding_model=c.embedding_model,
        dimension=c.dimension,
        chunk_chars=c.chunk_chars,
        overlap_chars=c.overlap_chars,
        fusion=c.fusion,
        alpha=c.alpha,
        rrf_k=c.rrf_k,
        min_relevance=c.min_relevance,
        generation=c.generation,
        documents=int(docs),
        chunks=int(chunks),
        updated_at=c.updated_at,
    )


def _clean_name(name: str) -> str:
    value = clean_text(name, 200).strip()
    if not _NAME.match(value):
        raise ValidationError(
            "A collection name is 1-80 characters: letters, digits, spaces and . , ( ) & ' - _ "
            "(starting with a letter or digit)."
        )
    return value


def _clean_roles(roles: list[str] | tuple[str, ...]) -> str:
    parsed = sorted({parse_role(str(r)) for r in roles}, key=lambda r: list(Role).index(r))
    return ",".join(r.value for r in parsed)


def _check_settings(
    chunk_chars: int, overlap_chars: int, fusion: str, alpha: float, min_relevance: float
) -> None:
    if not 200 <= chunk_chars <= 8000:
        raise ValidationError("Chunk size must be between 200 and 8,000 characters.")
    if not 0 <= overlap_chars < chunk_chars // 2:
        raise ValidationError("Chunk overlap must be at least 0 and under half the chunk size.")
    if fusion not in FUSIONS:
        raise ValidationError(f"Unknown fusion {fusion!r}: use one of {', '.join(FUSIONS)}.")
    if not 0.0 <= alpha <= 1.0:
        raise ValidationError("The dense weight (alpha) must be between 0 and 1.")
    if not -1.0 <= min_relevance <= 1.0:
        raise ValidationError("The relevance floor is a cosine similarity between -1 and 1.")


def create_collection(
    actor: Actor,
    name: str,
    *,
    description: str = "",
    roles: list[str] | tuple[str, ...] = (),
    embedding_model: str = MINILM,
    chunk_chars: int = 1200,
    overlap_chars: int = 200,
    fusion: str = "zscore",
    alpha: float = 0.5,
    min_relevance: float = 0.35,
) -> CollectionInfo:
    require(actor, Permission.RAG_MANAGE, action="rag.collection.create", target=name[:60])
    clean = _clean_name(name)
    model = validate_ref(embedding_model)
    _check_settings(chunk_chars, overlap_chars, fusion, alpha, min_relevance)
    role_text = _clean_roles(list(roles) or [actor.role.value])
    with unit_of_work() as session:
        if session.scalar(select(Collection.id).where(Collection.name == clean)) is not None:
            raise Conflict(f"A collection named '{clean}' exists already: choose another name.")
        collection = Collection(
            name=clean,
            description=clean_text(description, 500),
            owner=actor.username,
            roles=role_text,
            embedding_model=model,
            dimension=384 if model == MINILM or model.startswith("tuned:") else 0,
            chunk_chars=chunk_chars,
            overlap_chars=overlap_chars,
            fusion=fusion,
            alpha=alpha,
            min_relevance=min_relevance,
        )
        session.add(collection)
        session.flush()
        record(
            session,
            actor,
            "rag.collection.create",
            f"collection:{collection.id}",
            {"name": clean, "roles": role_text, "embedding_model": model},
        )
        return _info(session, collection)


def list_collections(actor: Actor) -> list[CollectionInfo]:
    """The collections `actor` may query, by name."""
    require(actor, Permission.RAG_QUERY, action="rag.collection.list")
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(select(Collection).order_by(Collection.name)).all()
        return [_info(session, c) for c in rows if may_access(actor, c)]


def get_collection(actor: Actor, collection_id: int) -> CollectionInfo:
    require(actor, Permission.RAG_QUERY, action="rag.collection.read", target=str(collection_id))
    with unit_of_work(read_only=True) as session:
        c = load_for(session, actor, collection_id, Permission.RAG_QUERY, "rag.collection.read")
        return _info(session, c)


def find_collection(actor: Actor, name: str) -> CollectionInfo:
    """By exact name (the CLI's way to name one)."""
    require(actor, Permission.RAG_QUERY, action="rag.collection.read", target=name[:60])
    with unit_of_work(read_only=True) as session:
        c = session.scalar(select(Collection).where(Collection.name == name.strip()))
        if c is None:
            raise NotFound(
                f"No collection is named {name[:80]!r}: `omni rag collections` lists them."
            )
        c = load_for(session, actor, c.id, Permission.RAG_QUERY, "rag.collection.read")
        return _info(session, c)


def update_collection(
    actor: Actor,
    collection_id: int,
    *,
    description: str | None = None,
    roles: list[str] | None = None,
    fusion: str | None = None,
    alpha: float | None = None,
    min_relevance: float | None = None,
) -> CollectionInfo:
    """Change how a collection is searched or who may use it. (Chunking and the embedding model
    apply at ingestion: `switch_embedding_model` re-embeds.)"""
    require(actor, Permission.RAG_MANAGE, action="rag.collection.update", target=str(collection_id))
    with unit_of_work() as session:
        c = load_for(session, actor, collection_id, Permission.RAG_MANAGE, "rag.collection.update")
        _check_settings(
            c.chunk_chars,
            c.overlap_chars,
            fusion if fusion is not None else c.fusion,
            alpha if alpha is not None else c.alpha,
            min_relevance if min_relevance is not None else c.min_relevance,
        )
        changes: dict[str, object] = {}
        if description is not None:
            c.description = clean_text(description, 500)
            changes["description"] = c.description
        if roles is not None:
            c.roles = _clean_roles(roles or [actor.role.value])
            changes["roles"] = c.roles
        if fusion is not None:
            c.fusion, changes["fusion"] = fusion, fusion
        if alpha is not None:
            c.alpha, changes["alpha"] = float(alpha), float(alpha)
        if min_relevance is not None:
            c.min_relevance, changes["min_relevance"] = float(min_relevance), float(min_relevance)
        c.updated_at = utcnow()
        record(session, actor, "rag.collection.update", f"collection:{c.id}", changes)
        return _info(session, c)


def delete_collection(actor: Actor, collection_id: int) -> None:
    """Delete a collection with its documents, chunks and index files."""
    require(actor, Permission.RAG_MANAGE, action="rag.collection.delete", target=str(collection_id))
    with unit_of_work() as session:
        c = load_for(session, actor, collection_id, Permission.RAG_MANAGE, "rag.collection.delete")
        name, cid = c.name, c.id
        docs = session.scalar(select(func.count()).where(Document.collection_id == cid)) or 0
        # bulk deletes: the ORM would load every chunk (and its vector) first
        session.execute(delete(Chunk).where(Chunk.collection_id == cid))
        session.execute(delete(Document).where(Document.collection_id == cid))
        session.delete(c)
        record(
            session,
            actor,
            "rag.collection.delete",
            f"collection:{cid}",
            {"name": name, "documents": int(docs)},
        )
    INDEXES.forget(cid)
    shutil.rmtree(collection_dir(cid), ignore_errors=True)
