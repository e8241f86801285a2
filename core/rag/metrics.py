"""Ranking metrics, as trec_eval / BEIR compute them.

- nDCG@k: gain = graded relevance (linear, as trec_eval's ndcg_cut), discount log2(rank + 1);
  the ideal ranking sorts all judged relevances of the query, cut at k.
- Recall@k: relevant documents (relevance > 0) in the top k over all relevant documents.
- MRR@k: 1 / rank of the first relevant document in the top k, 0 when none.

`ranking` is a list of document ids best first; `qrels` maps doc id -> relevance. Means are taken
over the queries that have at least one relevant judgement; a judged query with no results
scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from core.errors import ValidationError

Q = TypeVar("Q", bound=Hashable)
D = TypeVar("D", bound=Hashable)


def _check_k(k: int) -> None:
    if k <= 0:
        raise ValidationError(f"Metric cut-off k must be positive, got {k}.")


def ndcg_at_k(ranking: Sequence[D], qrels: Mapping[D, int], k: int = 10) -> float:
    _check_k(k)
    dcg = sum(
        max(qrels.get(doc, 0), 0) / math.log2(rank + 1)
        for rank, doc in enumerate(ranking[:k], start=1)
    )
    ideal_gains = sorted((rel for rel in qrels.values() if rel > 0), reverse=True)[:k]
    idcg = sum(rel / math.log2(rank + 1) for rank, rel in enumerate(ideal_gains, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[D], qrels: Mapping[D, int], k: int = 100) -> float:
    _check_k(k)
    relevant = {doc for doc, rel in qrels.items() if rel > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at_k(ranking: Sequence[D], qrels: Mapping[D, int], k: int = 10) -> float:
    _check_k(k)
    for rank, doc in enumerate(ranking[:k], start=1):
        if qrels.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def per_query(
    rankings: Mapping[Q, Sequence[D]],
    qrels: Mapping[Q, Mapping[D, int]],
    ndcg_k: int = 10,
    recall_k: int = 100,
    mrr_k: int = 10,
) -> dict[Q, dict[str, float]]:
    """Metrics for every query with at least one relevant judgement, keyed by query id."""
    out: dict[Q, dict[str, float]] = {}
    for query, judged in qrels.items():
        if not any(rel > 0 for rel in judged.values()):
            continue
        ranking = rankings.get(query, ())
        out[query] = {
            f"ndcg@{ndcg_k}": ndcg_at_k(ranking, judged, ndcg_k),
            f"recall@{recall_k}": recall_at_k(ranking, judged, recall_k),
            f"mrr@{mrr_k}": mrr_at_k(ranking, judged, mrr_k),
        }
    return out


def mean_metrics(per_query_scores: Mapping[Q, Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over the queries given (empty -> empty dict)."""
    if not per_query_scores:
        return {}
    names = list(next(iter(per_query_scores.values())))
    count = len(per_query_scores)
    return {name: sum(s[name] for s in per_query_scores.values()) / count for name in names}


def evaluate(
    rankings: Mapping[Q, Sequence[D]],
    qrels: Mapping[Q, Mapping[D, int]],
    ndcg_k: int = 10,
    recall_k: int = 100,
    mrr_k: int = 10,
) -> dict[str, float]:
    """Mean nDCG@k, Recall@k and MRR@k over the judged queries."""
    return mean_metrics(per_query(rankings, qrels, ndcg_k, recall_k, mrr_k))
