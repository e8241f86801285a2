from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from core.errors import IntegrityError, NotFound, ValidationError
from core.rag import index as index_module
from core.rag.index import VectorIndex, sidecar_path

DIM = 32


def unit(n: int, dim: int = DIM, seed: int = 0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    out: npt.NDArray[np.float32] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def brute(
    db: npt.NDArray[np.float32], ids: npt.NDArray[np.int64], q: npt.NDArray[np.float32], k: int
) -> list[int]:
    scores = db @ q
    order = np.argsort(-scores, kind="stable")[:k]
    return [int(ids[i]) for i in order]


def test_flat_matches_brute_force() -> None:
    db, queries = unit(500), unit(20, seed=1)
    ids = np.arange(1000, 1500, dtype=np.int64)
    index = VectorIndex(DIM)
    index.add(ids, db)
    assert index.kind == "flat" and len(index) == 500
    for q in queries:
        got = index.search(q, k=10)
        assert [i for i, _ in got] == brute(db, ids, q, 10)
        expected = np.sort(db @ q)[::-1][:10]
        np.testing.assert_allclose([s for _, s in got], expected, atol=1e-5)
    batch = index.search_many(queries, k=5)
    assert [[i for i, _ in row] for row in batch] == [brute(db, ids, q, 5) for q in queries]


def test_hnsw_chosen_above_threshold_with_good_recall() -> None:
    db, queries = unit(5000, seed=2), unit(100, seed=3)
    ids = np.arange(5000, dtype=np.int64) * 7
    index = VectorIndex(DIM, hnsw_threshold=1000)
    index.add(ids[:800], db[:800])
    kind_before = index.kind
    index.add(ids[800:], db[800:])
    assert kind_before == "flat" and index.kind == "hnsw" and len(index) == 5000
    hits = 0
    for q in queries:
        hits += len({i for i, _ in index.search(q, 10)} & set(brute(db, ids, q, 10)))
    assert hits / (10 * len(queries)) >= 0.95


def test_remove_flat_and_hnsw_with_tombstones() -> None:
    db = unit(2000, seed=4)
    ids = np.arange(2000, dtype=np.int64)
    for threshold in (10_000, 100):
        index = VectorIndex(DIM, hnsw_threshold=threshold)
        index.add(ids, db)
        q = db[5]
        assert index.search(q, 1)[0][0] == 5
        assert index.remove([5, 6, 99_999]) == 2
        assert 5 not in index and len(index) == 1998
        assert all(i not in (5, 6) for i, _ in index.search(q, 20))
        if index.kind == "hnsw":
            assert index.tombstones == 2
            index.remove(range(10, 500))  # > 20% tombstones: the graph is rebuilt
            assert index.tombstones == 0 and len(index) == 1508
        # a removed id can be added again with a new vector
        index.add([5], q[None, :])
        assert index.search(q, 1)[0][0] == 5


@pytest.mark.parametrize("exact_limit", [20_000, 0], ids=["exact-subset", "faiss-selector"])
def test_filter_by_allowed_ids(exact_limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "EXACT_FILTER_LIMIT", exact_limit)
    db, q = unit(3000, seed=5), unit(1, seed=6)[0]
    ids = np.arange(3000, dtype=np.int64)
    allowed = set(range(0, 3000, 3))
    sub = np.array(sorted(allowed), dtype=np.int64)
    for threshold in (10_000, 100):
        index = VectorIndex(DIM, hnsw_threshold=threshold)
        index.add(ids, db)
        got = [i for i, _ in index.search(q, 10, allowed_ids=allowed)]
        expected = brute(db[sub], sub, q, 10)
        if index.kind == "flat" or exact_limit:
            assert got == expected
        else:
            assert set(got) <= allowed and len(set(got) & set(expected)) >= 9
        assert index.search(q, 10, allowed_ids=[]) == []
        assert [i for i, _ in index.search(q, 10, allowed_ids={7, 8, 123_456})] == sorted(
            [7, 8], key=lambda i: -float(db[i] @ q)
        )
        index.remove([7])
        assert [i for i, _ in index.search(q, 10, allowed_ids={7, 8})] == [8]


def test_save_load_round_trip(tmp_path: Path) -> None:
    db, queries = unit(1500, seed=7), unit(5, seed=8)
    ids = np.arange(1500, dtype=np.int64) + 10
    for threshold in (10_000, 1000):
        index = VectorIndex(DIM, hnsw_threshold=threshold, ef_search=64)
        index.add(ids, db)
        index.remove([10, 11])
        path = tmp_path / f"c{threshold}" / "vectors.faiss"
        index.save(path)
        meta = json.loads(sidecar_path(path).read_text())
        assert meta["dimension"] == DIM and meta["count"] == 1498 and meta["kind"] == index.kind
        loaded = VectorIndex.load(path, dimension=DIM)
        assert loaded.kind == index.kind and len(loaded) == 1498
        assert loaded.ef_search == 64 and loaded.tombstones == index.tombstones
        for q in queries:
            assert loaded.search(q, 10) == index.search(q, 10)
        loaded.add([1], db[:1])  # still writable after loading
        assert not list(path.parent.glob("*.tmp"))


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    index = VectorIndex(DIM)
    index.add([1, 2], unit(2))
    path = tmp_path / "vectors.faiss"
    with pytest.raises(NotFound):
        VectorIndex.load(path)
    index.save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="rebuild"):
        VectorIndex.load(path)
    path.write_bytes(b"not a faiss index")
    meta = json.loads(sidecar_path(path).read_text())
    meta["sha256"] = __import__("hashlib").sha256(b"not a faiss index").hexdigest()
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(IntegrityError):
        VectorIndex.load(path)
    sidecar_path(path).write_text("{broken")
    with pytest.raises(IntegrityError, match="sidecar"):
        VectorIndex.load(path)


def test_dimension_mismatch_and_bad_input(tmp_path: Path) -> None:
    index = VectorIndex(DIM)
    with pytest.raises(ValidationError, match="dimension 16"):
        index.add([1], unit(1, dim=16))
    index.add([1, 2], unit(2))
    with pytest.raises(ValidationError, match="dimension"):
        index.search(unit(1, dim=8)[0])
    with pytest.raises(ValidationError, match="already"):
        index.add([2], unit(1))
    with pytest.raises(ValidationError, match="zero vector"):
        index.add([3], np.zeros((1, DIM)))
    with pytest.raises(ValidationError, match="ids"):
        index.add([3, 4], unit(1))
    path = tmp_path / "v.faiss"
    index.save(path)
    with pytest.raises(ValidationError, match="re-embed"):
        VectorIndex.load(path, dimension=384)
    assert VectorIndex(DIM).search(unit(1)[0], 5) == []
