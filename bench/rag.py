"""Retrieval quality and latency on BEIR SciFact (train qrels): lexical, dense, hybrid, and peers.

    .venv/bin/python bench/rag.py [--data ../shared/data/scifact] [--record]

- lexical: the project's `LexicalIndex` (bm25s, BM25 Lucene k1=1.5 b=0.75, English stopwords,
  PyStemmer) over title + " " + text.
- dense: MiniLM (`core.embeddings.minilm`) embeddings of title + " " + text, exact inner product
  with numpy. Corpus embeddings are cached under bench/.peers/cache/ (git-ignored).
- hybrid: RRF k=60 (equal weights), and the best fusion of a small grid chosen on the train
  queries only, reported by 5-fold cross-validation over those queries (the configuration is
  picked on four folds and scored on the fifth; the figure is the mean of the out-of-fold scores).
- peers, same run: plain bm25s with the recipe of its README (BM25() defaults, tokenize with
  stopwords "en" and a PyStemmer English stemmer); plain MiniLM is the dense row (same
  embeddings, exact search).
- latency: per query, embedding the query + dense search + lexical search + fusion, one query
  at a time, p50/p95 over the train queries.

`--record` appends a dated section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# one BLAS thread: a 5,183 x 384 mat-vec gains nothing from threads, and on a shared 2-core
# machine they spin against the embedder's torch threads (7 ms vs 1 ms per query measured here)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine_info import load_average, machine  # noqa: E402
from core import clock  # noqa: E402  (the console's one clock)
from core.embeddings.minilm import shared_embedder  # noqa: E402
from core.rag.beir import load_beir  # noqa: E402
from core.rag.fusion import alpha_fusion, reciprocal_rank_fusion  # noqa: E402
from core.rag.lexical import LexicalIndex  # noqa: E402
from core.rag.metrics import mean_metrics, per_query  # noqa: E402

CACHE = ROOT / "bench" / ".peers" / "cache"
DEPTH = 1000  # default candidates taken from each retriever before fusion (--depth)
TOP = 100  # ranking length evaluated (Recall@100)
METRICS = ("ndcg@10", "recall@100", "mrr@10")
FOLDS = 5
SEED = 0

Ranked = list[tuple[int, float]]
Fuser = Callable[[Ranked, Ranked], Ranked]


def corpus_embeddings(doc_keys: list[str], texts: list[str]) -> tuple[np.ndarray, float | None]:
    """(n, 384) embeddings, from the cache when it matches these documents."""
    CACHE.mkdir(parents=True, exist_ok=True)
    embedder = shared_embedder()
    embedder.embed(["warm-up"])  # resolves the backend and precision the cache is keyed by
    tag = f"scifact_corpus_minilm_{embedder.backend}_{embedder.precision}"
    npy, ids_file = CACHE / f"{tag}.npy", CACHE / f"{tag}.ids.txt"
    if npy.is_file() and ids_file.is_file() and ids_file.read_text().split() == doc_keys:
        emb = np.load(npy)
        if emb.shape == (len(texts), 384):
            return emb.astype(np.float32), None
    start = time.perf_counter()
    emb = shared_embedder().embed(texts)
    seconds = time.perf_counter() - start
    np.save(npy, emb)
    ids_file.write_text("\n".join(doc_keys) + "\n")
    return emb, seconds


def dense_top(scores: np.ndarray, k: int) -> Ranked:
    k = min(k, scores.shape[0])
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(i), float(scores[i])) for i in top]


def configs() -> list[tuple[str, Fuser]]:
    out: list[tuple[str, Fuser]] = []
    for k in (5, 10, 20, 40, 60, 100):
        for w in (0.3, 0.4, 0.5, 0.6, 0.7):

            def rrf(d: Ranked, lx: Ranked, k: float = k, w: float = w) -> Ranked:
                return reciprocal_rank_fusion([d, lx], k=k, weights=[w, 1 - w], limit=TOP)

            out.append((f"RRF k={k} dense weight {w}", rrf))
    for norm in ("minmax", "zscore"):
        for a in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):

            def fuse(d: Ranked, lx: Ranked, a: float = a, norm: Any = norm) -> Ranked:
                return alpha_fusion(d, lx, alpha=a, normalization=norm, limit=TOP)

            out.append((f"{norm} score fusion alpha(dense)={a}", fuse))
    return out


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "scifact"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--depth", type=int, default=DEPTH, help="candidates per retriever")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    depth: int = args.depth

    # untyped packages: imported as Any
    bm25s: Any = importlib.import_module("bm25s")
    Stemmer: Any = importlib.import_module("Stemmer")

    data = load_beir(args.data, args.split)
    doc_keys = list(data.corpus)
    texts = [data.corpus[key].full_text for key in doc_keys]
    ids = list(range(len(doc_keys)))
    judged = data.judged_queries()
    qkeys = list(judged)
    qtexts = [judged[q] for q in qkeys]
    qrels = {q: dict(data.qrels[q]) for q in qkeys}
    key_of = dict(enumerate(doc_keys))
    print(f"{len(texts)} documents, {len(qkeys)} judged {args.split} queries", flush=True)

    def as_keys(ranked: Ranked) -> list[str]:
        return [key_of[i] for i, _ in ranked]

    # lexical (project)
    start = time.perf_counter()
    lexical = LexicalIndex()
    lexical.build(ids, texts)
    lexical_build_s = time.perf_counter() - start
    lex_runs = [lexical.search(q, depth) for q in qtexts]

    # peer: plain bm25s, README recipe
    stemmer = Stemmer.Stemmer("english")
    start = time.perf_counter()
    peer = bm25s.BM25()
    peer.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    peer_build_s = time.perf_counter() - start
    q_tokens = bm25s.tokenize(qtexts, stopwords="en", stemmer=stemmer, show_progress=False)
    peer_docs, _ = peer.retrieve(q_tokens, k=TOP, show_progress=False, n_threads=1)
    peer_rank = {q: [key_of[int(i)] for i in row] for q, row in zip(qkeys, peer_docs, strict=True)}

    # dense
    emb, embed_s = corpus_embeddings(doc_keys, texts)
    qemb = shared_embedder().embed(qtexts)
    dense_scores = qemb @ emb.T
    dense_runs = [dense_top(row, depth) for row in dense_scores]

    rows: list[tuple[str, dict[str, float]]] = []

    def score(name: str, rankings: dict[str, list[str]]) -> dict[str, dict[str, float]]:
        pq = per_query(rankings, qrels)
        rows.append((name, mean_metrics(pq)))
        return pq

    score("peer: plain bm25s 0.3.16 (README recipe)", peer_rank)
    score(
        "lexical: project LexicalIndex (bm25s)",
        {q: as_keys(r[:TOP]) for q, r in zip(qkeys, lex_runs, strict=True)},
    )
    score(
        f"dense: project MiniLM ({shared_embedder().backend} {shared_embedder().precision}), "
        "exact IP",
        {q: as_keys(r[:TOP]) for q, r in zip(qkeys, dense_runs, strict=True)},
    )

    def fused_per_query(fuser: Fuser) -> dict[str, dict[str, float]]:
        rankings = {
            q: as_keys(fuser(d, lx)) for q, d, lx in zip(qkeys, dense_runs, lex_runs, strict=True)
        }
        return per_query(rankings, qrels)

    grid = configs()
    start = time.perf_counter()
    grid_pq = {name: fused_per_query(fuser) for name, fuser in grid}
    grid_s = time.perf_counter() - start
    rrf60 = "RRF k=60 dense weight 0.5"
    rows.append(("hybrid: RRF k=60, equal weights", mean_metrics(grid_pq[rrf60])))

    # 5-fold cross-validation over the train queries
    order = qkeys[:]
    random.Random(SEED).shuffle(order)  # noqa: S311 - a fold split, not a secret
    folds = [order[i::FOLDS] for i in range(FOLDS)]
    oof: dict[str, dict[str, float]] = {}
    picked: list[str] = []
    for held in folds:
        held_set = set(held)
        tune = [q for q in qkeys if q not in held_set]
        best = max(grid_pq, key=lambda n: statistics.fmean(grid_pq[n][q]["ndcg@10"] for q in tune))
        picked.append(best)
        for q in held:
            oof[q] = grid_pq[best][q]
    rows.append(("hybrid: best fusion, 5-fold CV on train", mean_metrics(oof)))
    best_all = max(grid_pq, key=lambda n: mean_metrics(grid_pq[n])["ndcg@10"])
    rows.append((f"hybrid: {best_all} (all train, in-sample)", mean_metrics(grid_pq[best_all])))
    chosen = dict(grid)[best_all]

    # latency: one query at a time, embed + dense + lexical + fusion
    embedder = shared_embedder()
    for q in qtexts[:20]:
        embedder.embed([q])
    embed_ms: list[float] = []
    total_ms: list[float] = []
    for q in qtexts:
        t0 = time.perf_counter()
        vec = embedder.embed([q])[0]
        t1 = time.perf_counter()
        d = dense_top(emb @ vec, depth)
        lx = lexical.search(q, depth)
        chosen(d, lx)
        t2 = time.perf_counter()
        embed_ms.append((t1 - t0) * 1000)
        total_ms.append((t2 - t0) * 1000)
    search_ms = [t - e for t, e in zip(total_ms, embed_ms, strict=True)]

    header = "| method | nDCG@10 | Recall@100 | MRR@10 |\n| --- | ---: | ---: | ---: |"
    table = "\n".join(
        [header]
        + [f"| {name} | " + " | ".join(f"{m[k]:.4f}" for k in METRICS) + " |" for name, m in rows]
    )
    latency = (
        f"| per query | p50 ms | p95 ms |\n| --- | ---: | ---: |\n"
        f"| embed query | {percentile(embed_ms, 50):.2f} | {percentile(embed_ms, 95):.2f} |\n"
        f"| search: dense + lexical + fusion | {percentile(search_ms, 50):.2f} | "
        f"{percentile(search_ms, 95):.2f} |\n"
        f"| total (embed + hybrid search) | {percentile(total_ms, 50):.2f} | "
        f"{percentile(total_ms, 95):.2f} |"
    )
    picks = ", ".join(f"{n} ({c}/5)" for n, c in Counter(picked).most_common())
    print(table)
    print()
    print(latency)
    print(f"\nfolds picked: {picks}; grid of {len(grid)} configs scored in {grid_s:.1f} s")
    load = load_average()
    print(f"load average (1/5/15 min): {load}")
    print(
        f"lexical build {lexical_build_s:.2f} s, peer build {peer_build_s:.2f} s, "
        f"corpus embedding {'cached' if embed_s is None else f'{embed_s:.0f} s'}"
    )

    if args.record:
        today = clock.today().isoformat()
        section = f"""

## RAG retrieval (bench/rag.py) — {today}, {machine()}

Method: `.venv/bin/python bench/rag.py --depth {depth} --record` on `../shared/data/scifact`
(5,183 abstracts), the {len(qkeys)} judged queries of `qrels/train.tsv`. Documents are
title + " " + text. Lexical: project `LexicalIndex` (bm25s {bm25s.__version__}, BM25 Lucene
k1=1.5 b=0.75, English stopwords, PyStemmer {getattr(Stemmer, "__version__", "3.1.0")}
English). Dense: MiniLM (core.embeddings, backend {shared_embedder().backend}, precision
{shared_embedder().precision}, mean pooling, max length 256) with exact inner-product search in
numpy. Hybrid: top {depth} from each, fused to {TOP}. Peer in the same run: plain bm25s with its
README recipe (plain fp32 MiniLM against the project embedder: bench/embed_speed.py).
The best fusion is chosen from a grid of
{len(grid)} (RRF k in 5..100 x dense weight 0.3..0.7; min-max / z-score score fusion x alpha
0.2..0.8) by 5-fold cross-validation over the train queries (pick on 4 folds by nDCG@10, score
the 5th; mean of out-of-fold scores). Folds picked: {picks}. The in-sample row is the same grid's
best on all train queries, shown for reference only (optimistic). Published SciFact (test)
nDCG@10: BM25 0.665, all-MiniLM-L6-v2 0.645; PEERS.md held-out: bm25s 0.686, MiniLM 0.645,
RRF k=60 0.717.

{table}

Latency, one query at a time over the {len(qkeys)} train queries (after 20 warm-up), CPU,
OpenBLAS at one thread; load average at the end of the run {load} (1/5/15 min; another
benchmark may have shared the 2 cores):

{latency}
"""
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write(section)
        print("appended to bench/RESULTS.md")


if __name__ == "__main__":
    main()
