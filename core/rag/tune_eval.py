"""Retrieval metrics before and after tuning, on held-out queries over a BEIR corpus: dense with
the embedder under test, and the project's hybrid fusion (z-score, alpha 0.5) with BM25."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy.typing as npt

from core.embeddings.minilm import MiniLMEmbedder
from core.errors import ValidationError
from core.rag.beir import BeirDataset
from core.rag.evaluate import dense_top
from core.rag.fusion import alpha_fusion
from core.rag.lexical import LexicalIndex
from core.rag.metrics import evaluate

# candidates per retriever before fusion, fused ranking length (as bench/rag.py)
EVAL_DEPTH = 1000
EVAL_TOP = 100


@dataclass(frozen=True)
class RetrievalEval:
    """Score retrieval on `query_ids` of `dataset` (their qrels) over its whole corpus: dense
    (exact inner product) and, with `hybrid`, z-score alpha 0.5 fusion with BM25, top `depth`
    from each fused to 100. `base_corpus_embeddings` (the untuned model's corpus embeddings, in
    corpus order) saves re-embedding the corpus for the "before" figures."""

    dataset: BeirDataset
    query_ids: Sequence[str]
    hybrid: bool = True
    depth: int = EVAL_DEPTH
    base_corpus_embeddings: npt.NDArray[Any] | None = None


def evaluate_retrieval(
    dataset: BeirDataset,
    query_ids: Sequence[str],
    model_path: str | Path | None = None,
    *,
    hybrid: bool = True,
    depth: int = EVAL_DEPTH,
    corpus_embeddings: npt.NDArray[Any] | None = None,
    lexical: LexicalIndex | None = None,
) -> dict[str, float]:
    """nDCG@10, Recall@100, MRR@10 of `query_ids` over the whole corpus of `dataset` with the
    embedder at `model_path` (None: the bundled model): keys "dense_ndcg@10", ... and, with
    `hybrid`, "hybrid_ndcg@10", ... (the project's fusion: z-score alpha 0.5, top `depth` from
    dense and BM25 each, fused to 100). Queries without a relevant judgement are skipped."""
    judged = dataset.judged_queries()
    qids = [q for q in query_ids if q in judged]
    if not qids:
        raise ValidationError("Evaluation: none of the query ids has a relevant judgement.")
    doc_keys = list(dataset.corpus)
    texts = [dataset.corpus[k].full_text for k in doc_keys]
    embedder = MiniLMEmbedder(model_path=model_path)
    emb = corpus_embeddings if corpus_embeddings is not None else embedder.embed(texts)
    if emb.shape[0] != len(doc_keys):
        raise ValidationError(
            f"Evaluation: {emb.shape[0]} corpus embeddings for {len(doc_keys)} documents."
        )
    qemb = embedder.embed([judged[q] for q in qids])
    qrels = {q: dict(dataset.qrels[q]) for q in qids}
    dense_runs = [dense_top(row, depth) for row in qemb @ emb.T]
    out: dict[str, float] = {}
    rankings = {
        q: [doc_keys[i] for i, _ in r[:EVAL_TOP]] for q, r in zip(qids, dense_runs, strict=True)
    }
    out.update({f"dense_{k}": v for k, v in evaluate(rankings, qrels).items()})
    if hybrid:
        if lexical is None:
            lexical = LexicalIndex()
            lexical.build(list(range(len(texts))), texts)
        fused = {
            q: [
                doc_keys[i]
                for i, _ in alpha_fusion(
                    d, lexical.search(judged[q], depth), 0.5, "zscore", limit=EVAL_TOP
                )
            ]
            for q, d in zip(qids, dense_runs, strict=True)
        }
        out.update({f"hybrid_{k}": v for k, v in evaluate(fused, qrels).items()})
    return out
