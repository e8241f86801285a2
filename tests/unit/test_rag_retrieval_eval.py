"""Retrieval evaluation pieces: fusion, ranking metrics, the BEIR loader and the BM25 index."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from core.errors import ValidationError
from core.rag.beir import load_beir, load_qrels
from core.rag.fusion import (
    alpha_fusion,
    normalize,
    reciprocal_rank_fusion,
    weighted_score_fusion,
)
from core.rag.lexical import LexicalIndex
from core.rag.metrics import evaluate, mrr_at_k, ndcg_at_k, per_query, recall_at_k

# ---------------------------------------------------------------- fusion


def test_rrf_hand_example() -> None:
    a = [("x", 9.0), ("y", 5.0), ("z", 1.0)]
    b = [("y", 0.9), ("w", 0.8)]
    fused = reciprocal_rank_fusion([a, b], k=1)
    got = dict(fused)
    assert got["x"] == pytest.approx(1 / 2)
    assert got["y"] == pytest.approx(1 / 3 + 1 / 2)
    assert got["z"] == pytest.approx(1 / 4)
    assert got["w"] == pytest.approx(1 / 3)
    assert [d for d, _ in fused] == ["y", "x", "w", "z"]


def test_rrf_weights_limit_and_ties() -> None:
    a = [(1, 0.0), (2, 0.0)]
    b = [(2, 0.0), (1, 0.0)]
    # equal weights: 1 and 2 tie; the tie goes to first appearance (1 from list a)
    assert [d for d, _ in reciprocal_rank_fusion([a, b], k=60)] == [1, 2]
    # list b weighted up: 2 wins
    assert [d for d, _ in reciprocal_rank_fusion([a, b], k=60, weights=[0.2, 0.8])] == [2, 1]
    assert len(reciprocal_rank_fusion([a, b], limit=1)) == 1
    assert reciprocal_rank_fusion([[], []]) == []


def test_rrf_rejects_bad_parameters() -> None:
    with pytest.raises(ValidationError):
        reciprocal_rank_fusion([[(1, 1.0)]], k=-1)
    with pytest.raises(ValidationError):
        reciprocal_rank_fusion([[(1, 1.0)]], weights=[1.0, 2.0])
    with pytest.raises(ValidationError):
        reciprocal_rank_fusion([[(1, 1.0)]], weights=[-1.0])


def test_normalize() -> None:
    assert normalize([3.0, 1.0, 2.0]) == [1.0, 0.0, 0.5]
    assert normalize([2.0, 2.0]) == [1.0, 1.0]
    assert normalize([]) == []
    z = normalize([1.0, 3.0], "zscore")
    assert z == pytest.approx([-1.0, 1.0])
    assert normalize([5.0, 5.0], "zscore") == [0.0, 0.0]
    with pytest.raises(ValidationError):
        normalize([1.0], "rank")  # type: ignore[arg-type]


def test_minmax_alpha_fusion_hand_example() -> None:
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]  # -> a 1, b 0.5, c 0
    lexical = [("c", 20.0), ("d", 10.0)]  # -> c 1, d 0
    fused = dict(alpha_fusion(dense, lexical, alpha=0.75))
    assert fused["a"] == pytest.approx(0.75)
    assert fused["b"] == pytest.approx(0.375)
    assert fused["c"] == pytest.approx(0.25)
    assert fused["d"] == pytest.approx(0.0)
    assert next(d for d, _ in alpha_fusion(dense, lexical, alpha=0.2)) == "c"
    with pytest.raises(ValidationError):
        alpha_fusion(dense, lexical, alpha=1.5)


def test_zscore_fusion_missing_gets_list_floor() -> None:
    a = [(1, 3.0), (2, 1.0)]  # z: 1 -> +1, 2 -> -1
    b = [(3, 5.0), (1, 1.0)]  # z: 3 -> +1, 1 -> -1
    fused = dict(weighted_score_fusion([a, b], [1.0, 1.0], normalization="zscore"))
    assert fused[1] == pytest.approx(0.0)
    assert fused[2] == pytest.approx(-1.0 + -1.0)  # missing from b: b's floor (-1)
    assert fused[3] == pytest.approx(-1.0 + 1.0)


# ---------------------------------------------------------------- metrics


def test_ndcg_hand_example() -> None:
    qrels = {"d1": 2, "d2": 1, "d9": 1}
    ranking = ["d2", "x", "d1"]
    dcg = 1 / math.log2(2) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranking, qrels, 10) == pytest.approx(dcg / idcg)
    # cut at k=1: only d2 counts; ideal has the grade-2 document first
    assert ndcg_at_k(ranking, qrels, 1) == pytest.approx(1 / 2)
    assert ndcg_at_k(["d1", "d2", "d9"], qrels, 3) == pytest.approx(1.0)
    assert ndcg_at_k([], qrels, 10) == 0.0
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0


def test_recall_and_mrr_hand_examples() -> None:
    qrels = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["c", "a", "x"], qrels, 2) == pytest.approx(0.5)
    assert recall_at_k(["b", "a"], qrels, 100) == pytest.approx(1.0)
    assert mrr_at_k(["c", "x", "b"], qrels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["c", "x", "b"], qrels, 2) == 0.0
    with pytest.raises(ValidationError):
        mrr_at_k(["a"], qrels, 0)


def test_means_only_over_judged_queries() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    rankings = {"q1": ["a"], "q3": ["c"]}  # q2 got no results at all
    scores = per_query(rankings, qrels)
    assert set(scores) == {"q1", "q2"}  # q3 has no relevant judgement
    means = evaluate(rankings, qrels)
    assert means == {"ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5}
    assert evaluate({}, {}) == {}


# ---------------------------------------------------------------- BEIR loader


def _write_beir(root: Path, corpus: str, queries: str, qrels: str) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    (root / "queries.jsonl").write_text(queries, encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return root


GOOD_CORPUS = "\n".join(
    json.dumps(d)
    for d in [
        {"_id": "d1", "title": "Cats", "text": "Cats purr."},
        {"_id": 2, "text": "Dogs bark."},
    ]
)
GOOD_QUERIES = json.dumps({"_id": "q1", "text": "purring"}) + "\n\n"
GOOD_QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t2\t0\n"


def test_beir_loads_tiny_dataset(tmp_path: Path) -> None:
    data = load_beir(_write_beir(tmp_path, GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS), "test")
    assert data.corpus["d1"].full_text == "Cats Cats purr."
    assert data.corpus["2"].title == "" and data.corpus["2"].full_text == "Dogs bark."
    assert data.queries == {"q1": "purring"}
    assert data.qrels == {"q1": {"d1": 2, "2": 0}}
    assert data.judged_queries() == {"q1": "purring"}


@pytest.mark.parametrize(
    ("corpus", "queries", "qrels", "fragment"),
    [
        (GOOD_CORPUS + "\n{not json", GOOD_QUERIES, GOOD_QRELS, "corpus.jsonl line 3"),
        ('{"title": "x", "text": "y"}', GOOD_QUERIES, GOOD_QRELS, "corpus.jsonl line 1"),
        ('{"_id": "d1", "text": 5}', GOOD_QUERIES, GOOD_QRELS, "corpus.jsonl line 1"),
        (
            GOOD_CORPUS + "\n" + '{"_id": "d1", "text": "again"}',
            GOOD_QUERIES,
            GOOD_QRELS,
            "duplicate",
        ),
        (GOOD_CORPUS, "[1, 2]", GOOD_QRELS, "queries.jsonl line 1"),
        (GOOD_CORPUS, GOOD_QUERIES, "qid\tdid\tscore\n", "qrels/test.tsv line 1"),
        (GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS + "q1\td1\n", "test.tsv line 4"),
        (GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS + "q1\td1\thigh\n", "test.tsv line 4"),
        (GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS + "q1\tnope\t1\n", "not in corpus.jsonl"),
        (GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS + "q7\td1\t1\n", "not in queries.jsonl"),
    ],
)
def test_beir_malformed_inputs_name_file_and_line(
    tmp_path: Path, corpus: str, queries: str, qrels: str, fragment: str
) -> None:
    root = _write_beir(tmp_path, corpus, queries, qrels)
    with pytest.raises(ValidationError, match=fragment.replace("/", ".")):
        load_beir(root, "test")


def test_beir_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="directory not found"):
        load_beir(tmp_path / "nowhere")
    root = _write_beir(tmp_path / "ds", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    with pytest.raises(ValidationError, match=r"missing: .*train\.tsv"):
        load_beir(root, "train")
    (root / "queries.jsonl").unlink()
    with pytest.raises(ValidationError, match=r"missing: .*queries\.jsonl"):
        load_beir(root, "test")
    empty = tmp_path / "empty.tsv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValidationError, match="empty qrels"):
        load_qrels(empty)


# ---------------------------------------------------------------- lexical index

TEXTS = {
    10: "The cat sat on the mat and purred.",
    20: "Dogs are loyal animals that bark at strangers.",
    30: "Cats and dogs can live together peacefully.",
    40: "Quantum computing uses qubits for computation.",
    50: "A barking dog never bites, says the proverb.",
}


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    idx = LexicalIndex()
    idx.build(list(TEXTS), list(TEXTS.values()))
    return idx


def test_lexical_search_stems_and_ranks(index: LexicalIndex) -> None:
    hits = index.search("barking dogs", k=10)
    ids = [i for i, _ in hits]
    assert set(ids) == {20, 30, 50}  # stemming: barking ~ bark, dogs ~ dog
    assert 40 not in ids and 10 not in ids  # no shared term -> not returned
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    assert len(index.search("barking dogs", k=1)) == 1
    assert index.search("the and a", k=5) == []  # stopwords only
    assert index.search("zebra", k=5) == []  # unknown term


def test_lexical_filter(index: LexicalIndex) -> None:
    hits = index.search("dogs", k=10, allowed_ids={30, 40, 999})
    assert [i for i, _ in hits] == [30]
    assert index.search("dogs", k=10, allowed_ids=[]) == []


def test_lexical_save_load_roundtrip(index: LexicalIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "lex")
    loaded = LexicalIndex.load(tmp_path / "lex")
    assert loaded.ids == list(TEXTS)
    assert loaded.search("cats purr", k=3) == index.search("cats purr", k=3)
    with pytest.raises(ValidationError, match="missing"):
        LexicalIndex.load(tmp_path / "nothing-here")


def test_lexical_errors() -> None:
    with pytest.raises(ValidationError, match="build or load"):
        LexicalIndex().search("x")
    with pytest.raises(ValidationError, match="twice"):
        LexicalIndex().build([1, 1], ["a b", "c d"])
    with pytest.raises(ValidationError, match="pair up"):
        LexicalIndex().build([1], ["a", "b"])
    with pytest.raises(ValidationError, match="nothing to index"):
        LexicalIndex().build([], [])
    with pytest.raises(ValidationError, match="b must be"):
        LexicalIndex(b=2.0)
    with pytest.raises(ValidationError):
        LexicalIndex().save("/tmp/never")
