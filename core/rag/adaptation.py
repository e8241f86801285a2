"""Domain adaptation as a permissioned, audited action: fine-tune the embedding model on
relevance judgements (a BEIR data set's qrels, or the answers users rated helpful in a
collection), register it in MLflow (`core.rag.tune`), and optionally switch a collection to it.

This is what `omni rag tune` calls; the jobs layer will schedule the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.audit.service import record_now
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.errors import ValidationError
from core.rag.answers import rated_pairs
from core.rag.beir import load_beir
from core.rag.tune import (
    RetrievalEval,
    TuneConfig,
    TuneResult,
    pairs_from_beir,
    split_queries,
    tune,
)

Progress = Callable[[int, int, float], None]
MIN_RATED_PAIRS = 8


def tune_on_dataset(
    actor: Actor,
    directory: str | Path,
    *,
    name: str,
    split: str = "train",
    held_out: float = 0.2,
    config: TuneConfig | None = None,
    evaluate: bool = True,
    progress: Progress | None = None,
) -> TuneResult:
    """Tune on the judged queries of `split`, keeping `held_out` of them (by query) out of
    training; with `evaluate`, retrieval on the held-out queries is logged before and after."""
    require(actor, Permission.RAG_TUNE, action="rag.tune", target=name[:60])
    data = load_beir(directory, split)
    judged = sorted(data.judged_queries())
    tune_ids, held_ids = split_queries(judged, held_out=held_out)
    evaluation = RetrievalEval(data, held_ids) if evaluate else None
    result = tune(
        pairs_from_beir(data, tune_ids),
        name,
        config=config,
        evaluation=evaluation,
        progress=progress,
    )
    _audit(actor, result, {"dataset": str(directory), "split": split, "held_out": len(held_ids)})
    return result


def tune_on_ratings(
    actor: Actor,
    collection_id: int,
    *,
    name: str,
    config: TuneConfig | None = None,
    progress: Progress | None = None,
) -> TuneResult:
    """Tune on (question, cited passage) pairs from answers rated helpful in a collection."""
    require(actor, Permission.RAG_TUNE, action="rag.tune", target=name[:60])
    pairs = rated_pairs(actor, collection_id)
    if len(pairs) < MIN_RATED_PAIRS:
        raise ValidationError(
            f"Only {len(pairs)} rated answers with citations in this collection; tuning needs "
            f"at least {MIN_RATED_PAIRS}. Rate more answers, or tune on a BEIR data set."
        )
    result = tune(pairs, name, config=config, progress=progress)
    _audit(actor, result, {"collection": collection_id, "source": "ratings"})
    return result


def _audit(actor: Actor, result: TuneResult, extra: dict[str, object]) -> None:
    summary: dict[str, object] = {
        "model": result.ref,
        "run_id": result.run_id,
        "pairs": result.train.pairs,
        "steps": result.train.steps,
        "device": result.train.device,
        **extra,
        **{k: round(v, 4) for k, v in result.metrics.items()},
    }
    record_now(actor, "rag.tune", f"model:{result.ref}", summary)
