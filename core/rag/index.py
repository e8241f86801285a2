"""A FAISS vector index per collection: inner product over unit vectors (cosine similarity).

Small collections use an exact `IndexFlatIP`; above `hnsw_threshold` vectors the index is rebuilt
as an approximate `IndexHNSWFlat` (M=32, `ef_search` tunable). Both sit inside an `IndexIDMap2`, so
the int64 ids are the database chunk ids. HNSW cannot delete: removed ids become tombstones that
searches filter out, and the graph is rebuilt once tombstones pass 20% of the stored vectors.

`save` writes the index and a small JSON sidecar (kind, dimension, count, tombstones, checksum)
through temporary files and `os.replace`, so a crash never leaves a half-written index behind.
All methods take one lock, so an index can be shared between threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from core.errors import IntegrityError, NotFound, ValidationError

Kind = Literal["flat", "hnsw"]

FORMAT_VERSION = 1
DEFAULT_HNSW_THRESHOLD = 50_000
DEFAULT_HNSW_M = 32
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF_SEARCH = 128
TOMBSTONE_REBUILD_FRACTION = 0.2
# With an allowed-id filter this small, HNSW is skipped and the allowed vectors are scored exactly.
EXACT_FILTER_LIMIT = 20_000
MAX_FILTERED_EF = 4096


def _faiss() -> Any:
    import faiss

    return faiss


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


class VectorIndex:
    def __init__(
        self,
        dimension: int = 384,
        *,
        hnsw_threshold: int = DEFAULT_HNSW_THRESHOLD,
        hnsw_m: int = DEFAULT_HNSW_M,
        ef_search: int = DEFAULT_EF_SEARCH,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    ) -> None:
        if dimension <= 0:
            raise ValidationError(f"The vector dimension must be positive, not {dimension}.")
        self.dimension = dimension
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self._ef_search = ef_search
        self._lock = threading.RLock()
        self._kind: Kind = "flat"
        self._tombstones: set[int] = set()
        self._ids: set[int] = set()  # live ids
        self._index: Any = self._new_index("flat")

    # ----- construction -------------------------------------------------------------------

    def _new_index(self, kind: Kind) -> Any:
        faiss = _faiss()
        if kind == "flat":
            inner = faiss.IndexFlatIP(self.dimension)
        else:
            inner = faiss.IndexHNSWFlat(self.dimension, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self._ef_search
        return faiss.IndexIDMap2(inner)  # the faiss wrapper keeps `inner` referenced

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def ef_search(self) -> int:
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if value < 1:
            raise ValidationError(f"ef_search must be at least 1, not {value}.")
        with self._lock:
            self._ef_search = value
            if self._kind == "hnsw":
                _faiss().downcast_index(self._index.index).hnsw.efSearch = value

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)

    @property
    def tombstones(self) -> int:
        with self._lock:
            return len(self._tombstones)

    def __contains__(self, item: object) -> bool:
        with self._lock:
            return isinstance(item, int) and item in self._ids

    def ids(self) -> set[int]:
        with self._lock:
            return set(self._ids)

    # ----- validation ---------------------------------------------------------------------

    def _matrix(self, vectors: npt.ArrayLike, what: str) -> npt.NDArray[np.float32]:
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2:
            raise ValidationError(f"{what} must be a vector or a 2-D matrix, not {arr.ndim}-D.")
        if arr.shape[1] != self.dimension:
            raise ValidationError(
                f"{what} have dimension {arr.shape[1]} but this index holds {self.dimension}-"
                "dimensional vectors: embed with the collection's model, or re-create the index."
            )
        if not np.isfinite(arr).all():
            raise ValidationError(f"{what} contain NaN or infinite values.")
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        if (norms < 1e-12).any():
            raise ValidationError(f"{what} contain a zero vector, which has no direction.")
        return np.ascontiguousarray(arr / norms, dtype=np.float32)

    # ----- mutation -----------------------------------------------------------------------

    def add(self, ids: Sequence[int] | npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add vectors under the given ids (normalised to unit length). An id already present
        is an error: remove it first (re-ingesting a document replaces its chunks that way)."""
        id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        mat = self._matrix(vectors, "Vectors")
        if len(id_arr) != mat.shape[0]:
            raise ValidationError(f"Got {len(id_arr)} ids for {mat.shape[0]} vectors.")
        if len(set(id_arr.tolist())) != len(id_arr):
            raise ValidationError("The ids to add contain duplicates.")
        if len(id_arr) == 0:
            return
        with self._lock:
            new_ids = [int(i) for i in id_arr]
            present = [i for i in new_ids if i in self._ids]
            if present:
                raise ValidationError(
                    f"{len(present)} id(s) are already in the index (e.g. {present[0]}): "
                    "remove them before adding them again."
                )
            if self._tombstones.intersection(new_ids):
                self._rebuild(self._kind)  # drop the stale copies before reusing their ids
            self._index.add_with_ids(mat, id_arr)
            self._ids.update(new_ids)
            if self._kind == "flat" and len(self._ids) > self.hnsw_threshold:
                self._rebuild("hnsw")

    def remove(self, ids: Iterable[int]) -> int:
        """Remove ids; unknown ids are ignored. Returns how many were removed."""
        with self._lock:
            gone = {int(i) for i in ids} & self._ids
            if not gone:
                return 0
            self._ids -= gone
            if self._kind == "flat":
                sel = _faiss().IDSelectorBatch(np.fromiter(gone, dtype=np.int64))
                self._index.remove_ids(sel)
            else:
                self._tombstones |= gone
                if len(self._tombstones) > TOMBSTONE_REBUILD_FRACTION * self._index.ntotal:
                    self._rebuild("flat" if len(self._ids) <= self.hnsw_threshold else "hnsw")
            return len(gone)

    def clear(self) -> None:
        with self._lock:
            self._kind = "flat"
            self._index = self._new_index("flat")
            self._ids.clear()
            self._tombstones.clear()

    def _live_vectors(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        ids = np.fromiter(sorted(self._ids), dtype=np.int64, count=len(self._ids))
        if len(ids) == 0:
            return ids, np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._index.reconstruct_batch(ids)
        return ids, np.ascontiguousarray(vectors, dtype=np.float32)

    def _rebuild(self, kind: Kind) -> None:
        ids, vectors = self._live_vectors()
        index = self._new_index(kind)
        if len(ids):
            index.add_with_ids(vectors, ids)
        self._index = index
        self._kind = kind
        self._tombstones.clear()

    def rebuild(self) -> None:
        """Compact tombstones now and pick the index kind for the current size."""
        with self._lock:
            self._rebuild("hnsw" if len(self._ids) > self.hnsw_threshold else "flat")

    # ----- search -------------------------------------------------------------------------

    def search(
        self, query: npt.ArrayLike, k: int = 10, allowed_ids: Iterable[int] | None = None
    ) -> list[tuple[int, float]]:
        """The k nearest (id, cosine score) pairs for one query vector, best first. With
        `allowed_ids`, only those ids can be returned (metadata filters resolve to an id set)."""
        mat = np.asarray(query, dtype=np.float32)
        if mat.ndim == 2 and mat.shape[0] != 1:
            raise ValidationError("search() takes one query vector: use search_many() for several.")
        return self.search_many(mat.reshape(1, -1), k, allowed_ids)[0]

    def search_many(
        self, queries: npt.ArrayLike, k: int = 10, allowed_ids: Iterable[int] | None = None
    ) -> list[list[tuple[int, float]]]:
        if k < 1:
            raise ValidationError(f"k must be at least 1, not {k}.")
        mat = self._matrix(queries, "Query vectors")
        faiss = _faiss()
        with self._lock:
            allowed = None if allowed_ids is None else {int(i) for i in allowed_ids} & self._ids
            live = len(self._ids) if allowed is None else len(allowed)
            if live == 0:
                return [[] for _ in range(mat.shape[0])]
            k_eff = min(k, live)
            if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
                return self._exact_subset(mat, allowed, k_eff)
            params: Any
            if self._kind == "hnsw":
                params = faiss.SearchParametersHNSW()
                ef = max(self._ef_search, k_eff)
                if allowed is not None:  # a selective filter needs a wider beam to fill k
                    ef = min(MAX_FILTERED_EF, ef * max(1, len(self._ids) // len(allowed)))
                params.efSearch = ef
            else:
                params = faiss.SearchParameters()
            keep: list[Any] = []  # the selectors must outlive the search call
            if allowed is not None:
                batch = faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64))
                keep.append(batch)
                params.sel = batch
            elif self._tombstones:
                dead = faiss.IDSelectorBatch(np.fromiter(self._tombstones, dtype=np.int64))
                not_dead = faiss.IDSelectorNot(dead)
                keep += [dead, not_dead]
                params.sel = not_dead
            scores, labels = self._index.search(mat, k_eff, params=params)
            del keep
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
            for row_ids, row_scores in zip(labels, scores, strict=True)
        ]

    def _exact_subset(
        self, mat: npt.NDArray[np.float32], allowed: set[int], k: int
    ) -> list[list[tuple[int, float]]]:
        ids = np.fromiter(sorted(allowed), dtype=np.int64, count=len(allowed))
        vectors = np.asarray(self._index.reconstruct_batch(ids), dtype=np.float32)
        scores = mat @ vectors.T
        results: list[list[tuple[int, float]]] = []
        for row in scores:
            top = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            top = top[np.lexsort((ids[top], -row[top]))]
            results.append([(int(ids[j]), float(row[j])) for j in top])
        return results

    # ----- persistence --------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to `path` and its sidecar to `path.json`, each atomically."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        faiss = _faiss()
        with self._lock:
            blob = faiss.serialize_index(self._index).tobytes()
            meta = {
                "format": FORMAT_VERSION,
                "kind": self._kind,
                "dimension": self.dimension,
                "count": len(self._ids),
                "tombstones": sorted(self._tombstones),
                "hnsw_threshold": self.hnsw_threshold,
                "hnsw_m": self.hnsw_m,
                "ef_search": self._ef_search,
                "ef_construction": self.ef_construction,
                "sha256": hashlib.sha256(blob).hexdigest(),
                "bytes": len(blob),
            }
            _atomic_write(target, blob)
            _atomic_write(sidecar_path(target), json.dumps(meta, indent=1).encode())

    @classmethod
    def load(cls, path: str | os.PathLike[str], dimension: int | None = None) -> VectorIndex:
        """Read an index written by `save`. `dimension`, when given, must match the stored one."""
        target = Path(path)
        side = sidecar_path(target)
        if not target.exists():
            raise NotFound(f"No vector index at {target}: ingest the collection to create it.")
        if not side.exists():
            raise IntegrityError(
                f"The vector index {target} has no sidecar {side.name}: rebuild the index "
                "(re-embed the collection)."
            )
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
            kind = meta["kind"]
            stored_dim = int(meta["dimension"])
            tombstones = {int(i) for i in meta["tombstones"]}
            checksum = str(meta["sha256"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(
                f"The vector index sidecar {side} is corrupt ({exc}): rebuild the index "
                "(re-embed the collection)."
            ) from exc
        if kind not in ("flat", "hnsw"):
            raise IntegrityError(f"The vector index sidecar {side} names an unknown kind {kind!r}.")
        if dimension is not None and dimension != stored_dim:
            raise ValidationError(
                f"The vector index {target} holds {stored_dim}-dimensional vectors but "
                f"{dimension} were expected: the collection's embedding model changed, so "
                "re-embed the collection."
            )
        blob = target.read_bytes()
        if hashlib.sha256(blob).hexdigest() != checksum:
            raise IntegrityError(
                f"The vector index {target} does not match its checksum (corrupt or partly "
                "written): rebuild the index (re-embed the collection)."
            )
        faiss = _faiss()
        try:
            # already downcast, and the owner of the memory: keep this very object
            index = faiss.deserialize_index(np.frombuffer(blob, dtype=np.uint8))
        except Exception as exc:  # faiss raises RuntimeError on unreadable data
            raise IntegrityError(
                f"The vector index {target} cannot be read ({exc}): rebuild the index."
            ) from exc
        if not isinstance(index, faiss.IndexIDMap2) or index.d != stored_dim:
            raise IntegrityError(
                f"The vector index {target} is not an id-mapped {stored_dim}-d index: rebuild it."
            )
        out = cls(
            stored_dim,
            hnsw_threshold=int(meta.get("hnsw_threshold", DEFAULT_HNSW_THRESHOLD)),
            hnsw_m=int(meta.get("hnsw_m", DEFAULT_HNSW_M)),
            ef_search=int(meta.get("ef_search", DEFAULT_EF_SEARCH)),
            ef_construction=int(meta.get("ef_construction", DEFAULT_EF_CONSTRUCTION)),
        )
        if kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efSearch = out.ef_search
        stored_ids = {int(i) for i in faiss.vector_to_array(index.id_map)}
        out._index = index
        out._kind = kind
        out._tombstones = tombstones & stored_ids
        out._ids = stored_ids - tombstones
        if len(out._ids) != int(meta.get("count", len(out._ids))):
            raise IntegrityError(
                f"The vector index {target} holds {len(out._ids)} vectors but its sidecar says "
                f"{meta.get('count')}: rebuild the index."
            )
        return out


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
