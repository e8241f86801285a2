"""Retrieval quality on BEIR-format data (lexical, dense, hybrid), as `omni rag eval` prints.

The same building blocks as a collection's search: `LexicalIndex` (bm25s), the collection's kind
of embedder with exact inner-product search (the FAISS flat index is exact too), and the fusion
functions, over title + " " + text of every corpus document. Corpus embeddings are cached under
`$OMNI_HOME/cache/eval/` keyed by the model and the corpus content, so a second run (another
fusion, another split) does not embed again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.config import get_settings
from core.errors import ValidationError
from core.rag.beir import BeirDataset, load_beir
from core.rag.embedders import embedder_for, validate_ref
from core.rag.fusion import alpha_fusion, reciprocal_rank_fusion
from core.rag.lexical import LexicalIndex
from core.rag.metrics import evaluate

Progress = Callable[[str], None]
TOP = 100
METRICS = ("ndcg@10", "recall@100", "mrr@10")


@dataclass(frozen=True)
class EvalReport:
    dataset: str
    split: str
    documents: int
    queries: int
    model: str
    fusion: str
    results: dict[str, dict[str, float]]  # method -> metric -> mean
    seconds: dict[str, float]  # step -> wall seconds

    def table(self) -> str:
        head = "| method | " + " | ".join(METRICS) + " |"
        lines = [head, "| --- |" + " ---: |" * len(METRICS)]
        for method, scores in self.results.items():
            cells = " | ".join(f"{scores.get(m, 0.0):.4f}" for m in METRICS)
            lines.append(f"| {method} | {cells} |")
        return "\n".join(lines)


def dense_top(scores: npt.NDArray[Any], k: int) -> list[tuple[int, float]]:
    """The `k` best (index, score) of one row of exact scores, best first (stable on ties)."""
    k = min(k, scores.shape[0])
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(i), float(scores[i])) for i in top]


def _corpus_embeddings(model: str, texts: list[str], progress: Progress | None) -> npt.NDArray[Any]:
    digest = hashlib.sha256(model.encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    cache = get_settings().home / "cache" / "eval" / f"{digest.hexdigest()[:32]}.npy"
    if cache.is_file():
        try:
            emb = np.load(cache, allow_pickle=False)
            if emb.shape[0] == len(texts):
                return np.asarray(emb, dtype=np.float32)
        except (OSError, ValueError):
            pass

    def on_batch(done: int, total: int) -> None:
        if progress is not None and (done == total or done % 512 < 64):
            progress(f"embedding corpus {done:,}/{total:,}")

    emb = embedder_for(model).embed(texts, on_batch)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(cache)
    return emb


def evaluate_dataset(
    actor: Actor,
    directory: str | Path,
    *,
    split: str = "test",
    model: str = "minilm",
    fusion: str = "zscore",
    alpha: float = 0.5,
    rrf_k: float = 60.0,
    depth: int = 1000,
    max_queries: int | None = None,
    progress: Progress | None = None,
) -> EvalReport:
    """nDCG@10, Recall@100 and MRR@10 of lexical, dense and hybrid retrieval on the judged
    queries of `split`."""
    require(actor, Permission.RAG_TUNE, action="rag.eval", target=str(directory)[:200])
    model = validate_ref(model)
    if fusion not in ("zscore", "minmax", "rrf"):
        raise ValidationError(f"Unknown fusion {fusion!r}: use zscore, minmax or rrf.")
    if depth < TOP:
        raise ValidationError(f"Depth must be at least {TOP} (Recall@{TOP} needs that many).")
    data: BeirDataset = load_beir(directory, split)
    judged = data.judged_queries()
    if not judged:
        raise ValidationError(f"No judged queries in split '{split}' of {directory}.")
    qkeys = sorted(judged)[: max_queries or None]
    keys = list(data.corpus)
    texts = [data.corpus[k].full_text for k in keys]
    ids = list(range(len(keys)))
    qrels = {q: dict(data.qrels[q]) for q in qkeys}
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    if progress:
        progress(f"indexing {len(texts):,} documents for BM25")
    lexical = LexicalIndex()
    lexical.build(ids, texts)
    lex_runs = [lexical.search(judged[q], depth) for q in qkeys]
    seconds["lexical"] = time.perf_counter() - started

    started = time.perf_counter()
    emb = _corpus_embeddings(model, texts, progress)
    qemb = embedder_for(model).embed([judged[q] for q in qkeys])
    dense_runs = [dense_top(row, depth) for row in qemb @ emb.T]
    seconds["dense"] = time.perf_counter() - started

    def fused(d: list[tuple[int, float]], lx: list[tuple[int, float]]) -> list[tuple[int, float]]:
        if fusion == "rrf":
            return reciprocal_rank_fusion([d, lx], k=rrf_k, weights=[alpha, 1 - alpha], limit=TOP)
        norm: Any = fusion
        return alpha_fusion(d, lx, alpha=alpha, normalization=norm, limit=TOP)

    def ranked(runs: list[list[tuple[int, float]]]) -> dict[str, list[str]]:
        return {q: [keys[i] for i, _ in run[:TOP]] for q, run in zip(qkeys, runs, strict=True)}

    label = f"rrf k={rrf_k:g}" if fusion == "rrf" else f"{fusion} alpha={alpha:g}"
    results = {
        "lexical (BM25)": evaluate(ranked(lex_runs), qrels),
        f"dense ({model})": evaluate(ranked(dense_runs), qrels),
        f"hybrid ({label})": evaluate(
            ranked([fused(d, lx) for d, lx in zip(dense_runs, lex_runs, strict=True)]), qrels
        ),
    }
    return EvalReport(str(directory), split, len(texts), len(qkeys), model, label, results, seconds)
