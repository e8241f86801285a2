"""Domain adaptation of the embedding model (`omni rag tune`): fine-tune the bundled
all-MiniLM-L6-v2 on (query, relevant passage) pairs, log the run to MLflow and register the result.

Training is a plain torch + transformers loop with the contrastive loss of sentence-transformers'
MultipleNegativesRankingLoss: each query's positive passage against every other passage in the
batch (in-batch negatives), cosine similarity times `scale` (20), cross-entropy. Pooling is the
embedder's (mean over tokens, L2-normalised), so the saved model (`save_pretrained`, model and
tokenizer) loads with `MiniLMEmbedder(model_path=...)`. Another passage that is also relevant to a
query (same query text, several relevant passages) is masked out of that query's negatives rather
than pushed away. Optionally each pair carries one BM25-mined hard negative (the best-ranked passage
of a corpus that is not a positive of the query), which doubles the passages encoded per step.

CUDA when available (autocast bf16, or fp16 with loss scaling), CPU otherwise; seeded (shuffle,
dropout). `progress(step, total_steps, loss)` is called after every optimiser step.

MLflow (`core.mlops.tracking`): params, the loss per step, retrieval metrics before and after on an
evaluation split when one is given, the model directory as artifacts (`model/`), then a new version
of the registered model. `tuned_model_path("name/3")` or `("name@alias")` gives the local directory
back (the artifact store itself when it is local, else a download cached under
`$OMNI_HOME/models/<name>/<version>/`).

Training pairs and hard negatives live in `core.rag.tune_pairs`, the before/after retrieval
evaluation in `core.rag.tune_eval`; both are re-exported here for callers.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.config import Settings, get_settings
from core.embeddings.minilm import _physical_cores, model_dir
from core.errors import ConfigurationError, NotFound, ValidationError
from core.mlops.tracking import Tracking, configure_mlflow, experiment_id, local_path
from core.rag.tune_eval import EVAL_DEPTH, EVAL_TOP, RetrievalEval, evaluate_retrieval
from core.rag.tune_pairs import (
    Pair,
    clean_pairs,
    mine_hard_negatives,
    pairs_from_beir,
    positives_by_query,
    split_queries,
)

# the pieces callers import from here (`omni rag tune`, tests, the benchmark)
__all__ = [
    "EVAL_DEPTH",
    "EVAL_TOP",
    "RetrievalEval",
    "TuneConfig",
    "TuneResult",
    "clean_pairs",
    "evaluate_retrieval",
    "mine_hard_negatives",
    "pairs_from_beir",
    "split_queries",
    "train_embedder",
    "tune",
    "tuned_model_path",
]

Progress = Callable[[int, int, float], None]

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_NAME = "omni-embeddings-custom"
META_FILE = "omni_tune.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_REF = re.compile(r"^(?P<name>[^/@\s]+)(?:/(?P<version>[0-9]+)|@(?P<alias>[A-Za-z0-9_\-]+))$")


@dataclass(frozen=True)
class TuneConfig:
    epochs: int = 1
    batch_size: int = 32
    # 5e-5 with hard negatives was the best of three measured on SciFact (bench/RESULTS.md)
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    scale: float = 20.0
    max_length: int = 256
    hard_negatives: bool = True
    seed: int = 0
    max_steps: int | None = None  # stop early (tests, smoke runs)
    device: str | None = None  # None: cuda when available, else cpu
    log_every: int = 1  # loss logged to MLflow every N steps

    def validate(self) -> None:
        if self.epochs < 1:
            raise ValidationError(f"epochs must be at least 1, got {self.epochs}.")
        if self.batch_size < 2:
            raise ValidationError(
                f"batch_size must be at least 2 (in-batch negatives), got {self.batch_size}."
            )
        if not 0 < self.learning_rate < 1:
            raise ValidationError(f"learning_rate must be in (0, 1), got {self.learning_rate}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ValidationError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}.")
        if self.scale <= 0:
            raise ValidationError(f"scale must be positive, got {self.scale}.")
        if not 8 <= self.max_length <= 512:
            raise ValidationError(f"max_length must be between 8 and 512, got {self.max_length}.")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValidationError(f"max_steps must be at least 1, got {self.max_steps}.")
        if self.log_every < 1:
            raise ValidationError(f"log_every must be at least 1, got {self.log_every}.")


@dataclass(frozen=True)
class TrainStats:
    steps: int
    losses: list[float]
    seconds: float
    device: str
    pairs: int

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


@dataclass(frozen=True)
class TuneResult:
    name: str
    version: int
    run_id: str
    path: Path
    train: TrainStats
    metrics: dict[str, float] = field(default_factory=dict)  # "before_dense_ndcg@10", ...

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"


# ------------------------------------------------------------------------------------- training


def _batches(count: int, batch_size: int, seed: int) -> list[list[int]]:
    order = list(range(count))
    random.Random(seed).shuffle(order)  # noqa: S311 - shuffling training data
    batches = [order[i : i + batch_size] for i in range(0, count, batch_size)]
    if len(batches) > 1 and len(batches[-1]) < 2:  # a lone pair has no in-batch negative
        batches[-2].extend(batches.pop())
    return batches


def train_embedder(
    pairs: Sequence[Pair],
    output_dir: str | Path,
    *,
    config: TuneConfig | None = None,
    base_model: str | Path | None = None,
    negatives: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> TrainStats:
    """Fine-tune `base_model` (default: the bundled all-MiniLM-L6-v2) on `pairs` and save it to
    `output_dir` (model and tokenizer, transformers format). `negatives`, one passage per pair
    ("" for none), are extra hard negatives. No MLflow here: see `tune`."""
    import torch
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    config = config or TuneConfig()
    config.validate()
    pairs = clean_pairs(pairs)
    if negatives is not None and len(negatives) != len(pairs):
        raise ValidationError(f"{len(pairs)} pairs but {len(negatives)} hard negatives.")
    source = Path(base_model) if base_model is not None else model_dir()
    if not source.is_dir():
        raise ConfigurationError(f"Base model directory {source} does not exist.")
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(_physical_cores())
    torch.manual_seed(config.seed)

    tokenizer: Any = AutoTokenizer.from_pretrained(source)
    model: Any = AutoModel.from_pretrained(source).to(device)
    model.train()
    positives = positives_by_query(pairs)

    steps_per_epoch = len(_batches(len(pairs), config.batch_size, config.seed))
    total = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    linear_schedule: Any = get_linear_schedule_with_warmup  # untyped in transformers
    scheduler = linear_schedule(optimizer, math.ceil(total * config.warmup_ratio), total)
    cuda = device.startswith("cuda")
    amp_dtype = (
        (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None
    )
    scaler = torch.amp.GradScaler("cuda" if cuda else "cpu", enabled=amp_dtype == torch.float16)

    def encode(texts: list[str]) -> Any:
        enc = tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=config.max_length,
            return_tensors="pt",
        ).to(device)
        hidden = model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)

    losses: list[float] = []
    start = time.perf_counter()
    step = 0
    for epoch in range(config.epochs):
        for batch in _batches(len(pairs), config.batch_size, config.seed + epoch):
            if step >= total:
                break
            queries = [pairs[i][0] for i in batch]
            columns = [pairs[i][1] for i in batch]
            if negatives is not None:
                columns += [negatives[i] for i in batch if negatives[i]]
            # another positive of the same query is not a negative: mask it out
            mask = torch.tensor(
                [
                    [j != i and text in positives[q] for j, text in enumerate(columns)]
                    for i, q in enumerate(queries)
                ],
                device=device,
            )
            with torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else nullcontext():
                q_emb = encode(queries)
                p_emb = encode(columns)
            scores = (q_emb @ p_emb.T) * config.scale
            scores = scores.masked_fill(mask, float("-inf"))
            labels = torch.arange(len(batch), device=device)
            loss = torch.nn.functional.cross_entropy(scores, labels)
            optimizer.zero_grad(set_to_none=True)
            scaled: Any = scaler.scale(loss)
            scaled.backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            value = float(loss.detach().cpu())
            if not math.isfinite(value):
                raise ValidationError(
                    f"Training diverged at step {step} (loss {value}): lower the learning rate."
                )
            losses.append(value)
            if progress is not None:
                progress(step, total, value)
    seconds = time.perf_counter() - start

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.to("cpu").save_pretrained(out)
    tokenizer.save_pretrained(out)
    meta = {
        "base_model": BASE_MODEL if base_model is None else str(base_model),
        "config": asdict(config),
        "pairs": len(pairs),
        "steps": step,
        "device": device,
        "train_seconds": round(seconds, 3),
        "final_loss": losses[-1] if losses else None,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return TrainStats(steps=step, losses=losses, seconds=seconds, device=device, pairs=len(pairs))


def _metric_key(name: str) -> str:
    return name.replace("@", "_at_")  # MLflow metric names do not allow "@"


# --------------------------------------------------------------------------------------- MLflow


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValidationError(
            f"Model name {name!r}: use letters, digits, '.', '_' or '-' (at most 100, "
            "starting with a letter or digit)."
        )


def _mlflow_error(exc: BaseException) -> str | None:
    """The MLflow error code of `exc`, or None when it is not an MlflowException."""
    from mlflow.exceptions import MlflowException

    return str(exc.error_code) if isinstance(exc, MlflowException) else None


def tune(
    pairs: Sequence[Pair],
    name: str = DEFAULT_NAME,
    *,
    config: TuneConfig | None = None,
    base_model: str | Path | None = None,
    negatives_corpus: Sequence[str] | None = None,
    evaluation: RetrievalEval | None = None,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> TuneResult:
    """Fine-tune on `pairs`, log the run to MLflow and register the model as a new version of
    `name`. Hard negatives (`config.hard_negatives`) are mined with BM25 from `negatives_corpus`
    (default: the pairs' passages). With `evaluation`, retrieval metrics are logged before and
    after. The store is checked before training starts (ConfigurationError if unreachable).
    An exception raised from `progress` cancels the run (recorded as FAILED in MLflow)."""
    from mlflow.exceptions import MlflowException

    config = config or TuneConfig()
    config.validate()
    _check_name(name)
    pairs = clean_pairs(pairs)
    settings = settings or get_settings()
    tracking = configure_mlflow(settings)
    client = tracking.client
    try:
        run = client.create_run(
            experiment_id(tracking), run_name=f"tune-{name}", tags={"omni.task": "rag-tune"}
        )
    except MlflowException as exc:
        raise ConfigurationError(f"MLflow could not start a run: {exc.message}") from exc
    run_id = str(run.info.run_id)
    metrics: dict[str, float] = {}
    try:
        import torch

        device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        params = {
            "base_model": BASE_MODEL if base_model is None else str(base_model),
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "warmup_ratio": config.warmup_ratio,
            "weight_decay": config.weight_decay,
            "scale": config.scale,
            "max_length": config.max_length,
            "hard_negatives": config.hard_negatives,
            "max_steps": config.max_steps,
            "pairs": len(pairs),
            "seed": config.seed,
            "device": device,
            "loss": "MultipleNegativesRankingLoss (in-batch negatives)",
        }
        if evaluation is not None:
            params["eval_queries"] = len(evaluation.query_ids)
        for key, value in params.items():
            client.log_param(run_id, key, value)

        if evaluation is not None:
            before = evaluate_retrieval(
                evaluation.dataset,
                evaluation.query_ids,
                base_model,
                hybrid=evaluation.hybrid,
                depth=evaluation.depth,
                corpus_embeddings=evaluation.base_corpus_embeddings,
            )
            metrics.update({f"before_{k}": v for k, v in before.items()})

        negatives = mine_hard_negatives(pairs, negatives_corpus) if config.hard_negatives else None

        def on_step(step: int, total: int, loss: float) -> None:
            if step % config.log_every == 0 or step == total:
                client.log_metric(run_id, "loss", loss, step=step)
            if progress is not None:
                progress(step, total, loss)

        work = settings.ensure_home() / "tmp"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work, prefix="tune-") as tmp:
            model_out = Path(tmp) / "model"
            stats = train_embedder(
                pairs,
                model_out,
                config=config,
                base_model=base_model,
                negatives=negatives,
                progress=on_step,
            )
            client.log_metric(run_id, "train_seconds", stats.seconds)
            if evaluation is not None:
                after = evaluate_retrieval(
                    evaluation.dataset,
                    evaluation.query_ids,
                    model_out,
                    hybrid=evaluation.hybrid,
                    depth=evaluation.depth,
                )
                metrics.update({f"after_{k}": v for k, v in after.items()})
            for key, value in metrics.items():
                client.log_metric(run_id, _metric_key(key), value)
            client.log_artifacts(run_id, str(model_out), "model")
        version = _register(tracking, name, run_id, f"{run.info.artifact_uri}/model", len(pairs))
    except MlflowException as exc:
        _end_run(client, run_id, "FAILED")
        raise ConfigurationError(f"MLflow failed during run {run_id}: {exc.message}") from exc
    except BaseException:  # a failed step, or a cancel raised from `progress`
        _end_run(client, run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return TuneResult(
        name=name,
        version=version,
        run_id=run_id,
        path=tuned_model_path(f"{name}/{version}", settings=settings),
        train=stats,
        metrics=metrics,
    )


def _end_run(client: Any, run_id: str, status: str) -> None:
    """Mark the run ended without hiding the error that ended it."""
    from mlflow.exceptions import MlflowException

    with suppress(MlflowException):  # the store went away mid-run: keep the original error
        client.set_terminated(run_id, status)


def _register(tracking: Tracking, name: str, run_id: str, source: str, pairs: int) -> int:
    from mlflow.exceptions import MlflowException

    client = tracking.client
    try:
        client.create_registered_model(
            name,
            description=f"{BASE_MODEL} fine-tuned for retrieval (omni rag tune); load the "
            "version's model/ directory with MiniLMEmbedder(model_path=...).",
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    mv = client.create_model_version(
        name, source=source, run_id=run_id, tags={"base_model": BASE_MODEL, "pairs": str(pairs)}
    )
    return int(mv.version)


def tuned_model_path(ref: str, settings: Settings | None = None) -> Path:
    """Local directory of registered model version `ref` ("name/version" or "name@alias"),
    loadable by `MiniLMEmbedder(model_path=...)`. Local artifacts are used in place; others are
    downloaded once into `$OMNI_HOME/models/<name>/<version>/`."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    match = _REF.match(ref.strip()) if isinstance(ref, str) else None
    if match is None:
        raise ValidationError(
            f"Model reference {ref!r}: use 'name/version' (e.g. omni-embeddings-kb/3) or "
            "'name@alias'."
        )
    name, version, alias = match["name"], match["version"], match["alias"]
    settings = settings or get_settings()
    client = configure_mlflow(settings).client
    try:
        if alias is not None:
            mv = client.get_model_version_by_alias(name, alias)
        else:
            mv = client.get_model_version(name, version)
        uri = str(client.get_model_version_download_uri(name, mv.version))
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise NotFound(f"No registered model version {ref!r} in MLflow.") from exc
        raise ConfigurationError(f"MLflow could not look up {ref!r}: {exc.message}") from exc
    local = local_path(uri)
    if local is not None and (local / "config.json").is_file():
        return local
    cache = settings.home / "models" / name / str(mv.version)
    if (cache / "config.json").is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=cache.parent, prefix=".download-") as tmp:
            got = Path(download_artifacts(artifact_uri=uri, dst_path=tmp))
            if not (got / "config.json").is_file():
                raise ConfigurationError(
                    f"Model version {ref!r}: its artifacts ({uri}) hold no transformers model."
                )
            if cache.exists():  # a concurrent download finished first
                shutil.rmtree(got)
            else:
                got.rename(cache)
    except (MlflowException, OSError) as exc:
        raise ConfigurationError(
            f"Could not fetch the artifacts of model version {ref!r} from {uri}: {exc}"
        ) from exc
    return cache


def registered_versions(name: str, settings: Settings | None = None) -> list[int]:
    """Version numbers registered under `name`, ascending (empty when the model is unknown)."""
    client = configure_mlflow(settings).client
    versions = client.search_model_versions(f"name = '{name}'") if _NAME.match(name) else []
    return sorted(int(v.version) for v in versions)


def describe(result: TuneResult) -> Mapping[str, Any]:
    """A plain summary of a run, for the CLI and the console."""
    return {
        "model": result.ref,
        "run_id": result.run_id,
        "path": str(result.path),
        "steps": result.train.steps,
        "final_loss": result.train.final_loss,
        "train_seconds": round(result.train.seconds, 1),
        "device": result.train.device,
        **{k: round(v, 4) for k, v in result.metrics.items()},
    }
