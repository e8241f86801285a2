"""Training pairs for `omni rag tune`: (query, relevant passage) from BEIR judgements or rated
answers, cleaned, split by query for honest evaluation, and BM25-mined hard negatives."""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence

from core.errors import ValidationError
from core.rag.beir import BeirDataset
from core.rag.lexical import LexicalIndex

Pair = tuple[str, str]


def pairs_from_beir(dataset: BeirDataset, query_ids: Collection[str] | None = None) -> list[Pair]:
    """(query text, title + " " + text) for every judgement with relevance > 0, in qrels order;
    only the queries in `query_ids` when given (a training split)."""
    wanted = set(query_ids) if query_ids is not None else None
    pairs: list[Pair] = []
    for qid, judged in dataset.qrels.items():
        if (wanted is not None and qid not in wanted) or qid not in dataset.queries:
            continue
        for doc_id, rel in judged.items():
            if rel > 0 and doc_id in dataset.corpus:
                pairs.append((dataset.queries[qid], dataset.corpus[doc_id].full_text))
    return pairs


def clean_pairs(pairs: Sequence[Pair]) -> list[Pair]:
    """Whitespace-stripped pairs with both sides non-empty, duplicates dropped, order kept.
    Raises `ValidationError` when nothing is left."""
    if isinstance(pairs, str | bytes):
        raise ValidationError("Training pairs must be a list of (query, passage) tuples.")
    seen: set[Pair] = set()
    out: list[Pair] = []
    for item in pairs:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValidationError(
                f"Training pairs must be (query, passage) tuples, got {type(item).__name__}."
            )
        query, passage = item
        if not isinstance(query, str) or not isinstance(passage, str):
            raise ValidationError("Training pairs must hold text: (query, passage) strings.")
        pair = (query.strip(), passage.strip())
        if pair[0] and pair[1] and pair not in seen:
            seen.add(pair)
            out.append(pair)
    if not out:
        raise ValidationError(
            "No training pairs: fine-tuning needs at least one (question, relevant passage) pair."
        )
    return out


def split_queries(
    query_ids: Sequence[str], held_out: float = 0.2, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Deterministic (tune, held-out) split of query ids: sorted, shuffled with `seed`, the last
    `held_out` fraction held out. Both parts keep the sorted order."""
    if not 0 < held_out < 1:
        raise ValidationError(f"held_out must be a fraction in (0, 1), got {held_out}.")
    order = sorted(set(query_ids))
    random.Random(seed).shuffle(order)  # noqa: S311 - a data split, not a secret
    cut = len(order) - max(1, round(len(order) * held_out))
    if cut < 1:
        raise ValidationError("Too few queries to split into a tuning and a held-out part.")
    return sorted(order[:cut]), sorted(order[cut:])


def mine_hard_negatives(pairs: Sequence[Pair], corpus: Sequence[str] | None = None) -> list[str]:
    """One BM25 hard negative per pair: the best-ranked passage of `corpus` (default: the pairs'
    own passages) that is not a positive of that query (""  when there is none)."""
    passages = list(dict.fromkeys(corpus if corpus is not None else (p for _, p in pairs)))
    positives = positives_by_query(pairs)
    if len(passages) < 2:
        return ["" for _ in pairs]
    index = LexicalIndex()
    index.build(list(range(len(passages))), passages)
    depth = min(len(passages), 50)
    by_query: dict[str, str] = {}
    out: list[str] = []
    for query, _ in pairs:
        if query not in by_query:
            choice = ""
            for doc, _score in index.search(query, depth):
                if passages[doc] not in positives[query]:
                    choice = passages[doc]
                    break
            by_query[query] = choice
        out.append(by_query[query])
    return out


def positives_by_query(pairs: Sequence[Pair]) -> dict[str, set[str]]:
    positives: dict[str, set[str]] = {}
    for query, passage in pairs:
        positives.setdefault(query, set()).add(passage)
    return positives
