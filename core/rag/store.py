"""The search indexes of each collection: FAISS (dense) and BM25 (lexical), cached in memory and
persisted under `$OMNI_HOME/rag/<collection id>/gen-<generation>/`.

The database holds every chunk's text and vector, so these indexes are derived data. A
collection's `generation` (in the database) names the only index directory that may be used for
it: a directory is written under a temporary name and renamed into place, so a reader sees either
a complete index of the right generation or none, in which case it rebuilds from the database.
Processes that share `OMNI_HOME` (the console and `omni rag ingest`) therefore never serve an
index that disagrees with the committed chunks.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import get_settings
from core.errors import ValidationError
from core.rag.index import VectorIndex
from core.rag.lexical import LexicalIndex
from core.rag.models import Chunk

STATE_FILE = "state.json"
KEEP_GENERATIONS = 2  # the newest directories kept on disk (a reader may still be loading one)


def collection_dir(collection_id: int) -> Path:
    return get_settings().home / "rag" / str(int(collection_id))


def vector_bytes(vector: npt.NDArray[Any]) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def vector_from(blob: bytes, dimension: int) -> npt.NDArray[np.float32]:
    arr = np.frombuffer(blob, dtype=np.float32)
    if arr.size != dimension:
        raise ValidationError(
            f"A stored vector has {arr.size} values, the collection {dimension}: re-embed it."
        )
    return arr


@dataclass
class CollectionIndex:
    collection_id: int
    generation: int
    dimension: int
    dense: VectorIndex
    lexical: LexicalIndex | None  # None while the collection has no chunks
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __len__(self) -> int:
        return len(self.dense)

    def search_dense(
        self, vector: npt.NDArray[Any], k: int, allowed: set[int] | None
    ) -> list[tuple[int, float]]:
        with self.lock:
            if len(self.dense) == 0:
                return []
            return self.dense.search(vector, k, allowed_ids=allowed)

    def search_lexical(
        self, query: str, k: int, allowed: set[int] | None
    ) -> list[tuple[int, float]]:
        with self.lock:
            if self.lexical is None:
                return []
            return self.lexical.search(query, k, allowed_ids=allowed)

    # -- persistence ---------------------------------------------------------------------------

    def save(self) -> None:
        """Write this generation's directory atomically and prune older ones."""
        base = collection_dir(self.collection_id)
        base.mkdir(parents=True, exist_ok=True)
        final = base / f"gen-{self.generation}"
        if final.exists():
            return  # another process wrote this generation: same content by construction
        tmp = Path(tempfile.mkdtemp(prefix=f".gen-{self.generation}-", dir=base))
        try:
            with self.lock:
                self.dense.save(tmp / "vectors.faiss")
                if self.lexical is not None:
                    self.lexical.save(tmp / "lexical")
                state = {
                    "generation": self.generation,
                    "dimension": self.dimension,
                    "count": len(self.dense),
                    "lexical": self.lexical is not None,
                }
            (tmp / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
            try:
                tmp.rename(final)
            except OSError:
                if not final.exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _prune(base, self.generation)

    @classmethod
    def load(cls, collection_id: int, generation: int, dimension: int) -> CollectionIndex | None:
        """The saved index of exactly this generation, or None (missing, unreadable, other
        dimension): the caller rebuilds."""
        path = collection_dir(collection_id) / f"gen-{generation}"
        try:
            state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
            if state.get("generation") != generation or state.get("dimension") != dimension:
                return None
            dense = VectorIndex.load(path / "vectors.faiss", dimension=dimension)
            lexical = LexicalIndex.load(path / "lexical") if state.get("lexical") else None
        except (OSError, ValueError, ValidationError, KeyError):
            return None
        except Exception:
            return None
        return cls(collection_id, generation, dimension, dense, lexical)


def _prune(base: Path, newest: int) -> None:
    generations: list[tuple[int, Path]] = []
    for entry in base.iterdir():
        if entry.is_dir() and entry.name.startswith("gen-"):
            with contextlib.suppress(ValueError):
                generations.append((int(entry.name[4:]), entry))
    generations.sort(reverse=True)
    for gen, entry in generations[KEEP_GENERATIONS:]:
        if gen < newest:
            shutil.rmtree(entry, ignore_errors=True)


def build_from_rows(
    collection_id: int,
    generation: int,
    dimension: int,
    rows: Sequence[tuple[int, bytes, str]],
) -> CollectionIndex:
    """An index over (chunk id, vector bytes, text) rows."""
    dense = VectorIndex(dimension)
    lexical: LexicalIndex | None = None
    if rows:
        ids = [r[0] for r in rows]
        matrix = np.stack([vector_from(r[1], dimension) for r in rows])
        dense.add(ids, matrix)
        lexical = LexicalIndex()
        lexical.build(ids, [r[2] for r in rows])
    return CollectionIndex(collection_id, generation, dimension, dense, lexical)


def rows_for(session: Session, collection_id: int) -> list[tuple[int, bytes, str]]:
    stmt = (
        select(Chunk.id, Chunk.vector, Chunk.text)
        .where(Chunk.collection_id == collection_id)
        .order_by(Chunk.id)
    )
    return [(int(i), bytes(v), str(t)) for i, v, t in session.execute(stmt)]


class IndexCache:
    """One CollectionIndex per collection per process, at the generation last asked for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._indexes: dict[int, CollectionIndex] = {}
        self._building: dict[int, threading.Lock] = {}

    def get(
        self, session: Session, collection_id: int, generation: int, dimension: int
    ) -> CollectionIndex:
        with self._lock:
            current = self._indexes.get(collection_id)
            if current is not None and current.generation == generation:
                return current
            build_lock = self._building.setdefault(collection_id, threading.Lock())
        with build_lock:  # one loader per collection; others wait and reuse its result
            with self._lock:
                current = self._indexes.get(collection_id)
                if current is not None and current.generation == generation:
                    return current
            index = CollectionIndex.load(collection_id, generation, dimension)
            if index is None:
                index = build_from_rows(
                    collection_id, generation, dimension, rows_for(session, collection_id)
                )
                with contextlib.suppress(OSError):  # an unwritable cache only costs speed
                    index.save()
            with self._lock:
                self._indexes[collection_id] = index
            return index

    def apply(
        self,
        collection_id: int,
        before: int,
        after: int,
        removed: Iterable[int],
        added: Sequence[tuple[int, npt.NDArray[Any]]],
    ) -> bool:
        """Apply one committed change to the in-memory dense index if it is at `before`; the
        lexical index is rebuilt by `finish` (BM25 has no incremental update). False when the
        cached index was not at `before` (another process changed the collection): the next
        `get` reloads or rebuilds instead."""
        with self._lock:
            index = self._indexes.get(collection_id)
            if index is None or index.generation != before:
                self._indexes.pop(collection_id, None)
                return False
        with index.lock:
            index.dense.remove(removed)
            if added:
                index.dense.add([i for i, _ in added], np.stack([v for _, v in added]))
            index.generation = after
            index.lexical = None if len(index.dense) == 0 else index.lexical
        return True

    def finish(self, session: Session, collection_id: int, generation: int, dimension: int) -> None:
        """After a batch of changes: rebuild BM25 from the committed rows and save this
        generation, so other processes load rather than rebuild. An index that is not cached at
        this generation is loaded or rebuilt from the database instead."""
        with self._lock:
            index = self._indexes.get(collection_id)
        if index is None or index.generation != generation:
            self.get(session, collection_id, generation, dimension)
            return
        rows = rows_for(session, collection_id)
        with index.lock:
            if {r[0] for r in rows} != index.dense.ids():  # a concurrent writer slipped in
                with self._lock:
                    self._indexes.pop(collection_id, None)
                self.get(session, collection_id, generation, dimension)
                return
            if rows:
                lexical = LexicalIndex()
                lexical.build([r[0] for r in rows], [r[2] for r in rows])
                index.lexical = lexical
            else:
                index.lexical = None
        with contextlib.suppress(OSError):
            index.save()

    def get_cached_ids(self, collection_id: int) -> set[int] | None:
        """The chunk ids in this process's cached dense index (None when not cached)."""
        with self._lock:
            index = self._indexes.get(collection_id)
        return None if index is None else index.dense.ids()

    def forget(self, collection_id: int | None = None) -> None:
        with self._lock:
            if collection_id is None:
                self._indexes.clear()
            else:
                self._indexes.pop(collection_id, None)


INDEXES = IndexCache()
