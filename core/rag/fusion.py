"""Fusing ranked lists from several retrievers (lexical, dense) into one ranked list.

Every function takes lists of (id, score) best first and returns one such list, best first.
Ties are broken by first appearance (earlier list first, then higher rank), so results are
deterministic. Pure functions: no state, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Literal, TypeVar

from core.errors import ValidationError

Id = TypeVar("Id", bound=Hashable)
Ranked = Sequence[tuple[Id, float]]
Normalization = Literal["minmax", "zscore"]


def _weights(count: int, weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * count
    if len(weights) != count:
        raise ValidationError(f"Fusion needs one weight per list: {count} lists, {len(weights)}.")
    if any(w < 0 or not math.isfinite(w) for w in weights):
        raise ValidationError("Fusion weights must be finite and >= 0.")
    return [float(w) for w in weights]


def _finish(
    fused: dict[Id, float], first_seen: dict[Id, int], limit: int | None
) -> list[tuple[Id, float]]:
    ordered = sorted(fused.items(), key=lambda item: (-item[1], first_seen[item[0]]))
    return ordered if limit is None else ordered[:limit]


def reciprocal_rank_fusion(
    lists: Sequence[Ranked[Id]],
    k: float = 60.0,
    weights: Sequence[float] | None = None,
    limit: int | None = None,
) -> list[tuple[Id, float]]:
    """RRF (Cormack et al. 2009): score(d) = sum over lists of w / (k + rank), rank from 1.

    Scores inside each list are ignored; only the order matters. A document missing from a list
    gets nothing from it."""
    if k < 0:
        raise ValidationError(f"RRF k must be >= 0, got {k}.")
    ws = _weights(len(lists), weights)
    fused: dict[Id, float] = {}
    first_seen: dict[Id, int] = {}
    for weight, ranked in zip(ws, lists, strict=True):
        for rank, (doc_id, _score) in enumerate(ranked, start=1):
            first_seen.setdefault(doc_id, len(first_seen))
            fused[doc_id] = fused.get(doc_id, 0.0) + weight / (k + rank)
    return _finish(fused, first_seen, limit)


def normalize(scores: Sequence[float], method: Normalization = "minmax") -> list[float]:
    """Min-max to [0, 1], or z-score (mean 0, population std 1). A constant list maps to 1.0
    under min-max (every entry is the best) and to 0.0 under z-score."""
    if not scores:
        return []
    if method == "minmax":
        lo, hi = min(scores), max(scores)
        if hi == lo:
            return [1.0] * len(scores)
        return [(s - lo) / (hi - lo) for s in scores]
    if method == "zscore":
        mean = sum(scores) / len(scores)
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
        if std == 0:
            return [0.0] * len(scores)
        return [(s - mean) / std for s in scores]
    raise ValidationError(f"Unknown score normalisation {method!r}: use 'minmax' or 'zscore'.")


def weighted_score_fusion(
    lists: Sequence[Ranked[Id]],
    weights: Sequence[float] | None = None,
    normalization: Normalization = "minmax",
    limit: int | None = None,
) -> list[tuple[Id, float]]:
    """score(d) = sum over lists of w * normalised score, each list normalised on its own.

    A document missing from a list gets that list's lowest normalised score (0 under min-max):
    it was not retrieved, so it is taken to be no better than the worst retrieved document."""
    ws = _weights(len(lists), weights)
    normed: list[dict[Id, float]] = []
    floors: list[float] = []
    first_seen: dict[Id, int] = {}
    for ranked in lists:
        values = normalize([float(s) for _, s in ranked], normalization)
        normed.append({doc_id: v for (doc_id, _), v in zip(ranked, values, strict=True)})
        floors.append(min(values) if values else 0.0)
        for doc_id, _ in ranked:
            first_seen.setdefault(doc_id, len(first_seen))
    fused: dict[Id, float] = {}
    for doc_id in first_seen:
        fused[doc_id] = sum(
            w * scores.get(doc_id, floor)
            for w, scores, floor in zip(ws, normed, floors, strict=True)
        )
    return _finish(fused, first_seen, limit)


def alpha_fusion(
    dense: Ranked[Id],
    lexical: Ranked[Id],
    alpha: float = 0.5,
    normalization: Normalization = "minmax",
    limit: int | None = None,
) -> list[tuple[Id, float]]:
    """Convex combination alpha * dense + (1 - alpha) * lexical of normalised scores."""
    if not 0.0 <= alpha <= 1.0:
        raise ValidationError(f"Fusion alpha must be between 0 and 1, got {alpha}.")
    return weighted_score_fusion(
        [dense, lexical], [alpha, 1.0 - alpha], normalization=normalization, limit=limit
    )
