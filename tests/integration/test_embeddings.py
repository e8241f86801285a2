"""The bundled all-MiniLM-L6-v2, for real: the project's embedder against a plain transformers loop
(batch 64, max length 256, fp32, input order) on ~50 texts of mixed length. One model load per
session; the module runs in a few seconds on 2 CPU cores."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from core.embeddings.minilm import DIMENSION, MAX_LENGTH, MiniLMEmbedder, model_dir

SAMPLE = (
    "the patient cohort showed reduced inflammation after treatment with the inhibitor while "
    "controls did not change and the effect persisted over twelve weeks of follow up in all "
    "sites across three countries with consistent dosing and careful monitoring of side effects"
)
WORDS = SAMPLE.split()


def mixed_texts(n: int = 50) -> list[str]:
    rng = np.random.default_rng(7)
    texts = []
    for i in range(n):
        length = int(rng.choice([2, 5, 12, 30, 60, 120, 400]))  # 400 words: truncated at 256
        start = int(rng.integers(0, len(WORDS)))
        words = [WORDS[(start + j) % len(WORDS)] for j in range(length)]
        texts.append(f"doc {i}: " + " ".join(words))
    return texts


def plain_loop(texts: list[str]) -> npt.NDArray[np.float32]:
    from transformers import AutoModel, AutoTokenizer

    tok: Any = AutoTokenizer.from_pretrained(model_dir())
    model: Any = AutoModel.from_pretrained(model_dir()).eval()
    out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(texts), 64):
            enc = tok(
                texts[s : s + 64],
                padding=True,
                truncation=True,
                max_length=MAX_LENGTH,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[s : s + len(texts[s : s + 64])] = torch.nn.functional.normalize(pooled, dim=1)
    return out


@pytest.fixture(scope="session")
def texts() -> list[str]:
    return mixed_texts()


@pytest.fixture(scope="session")
def reference(texts: list[str]) -> npt.NDArray[np.float32]:
    return plain_loop(texts)


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()  # default precision: what ingestion uses


@pytest.fixture(scope="session")
def fast(embedder: MiniLMEmbedder, texts: list[str]) -> npt.NDArray[np.float32]:
    return embedder.embed(texts)


def test_shape_dtype_unit_norm(fast: npt.NDArray[np.float32]) -> None:
    assert fast.shape == (50, DIMENSION) and fast.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


def test_fast_path_matches_plain_loop_in_input_order(
    fast: npt.NDArray[np.float32], reference: npt.NDArray[np.float32]
) -> None:
    cos = (fast * reference).sum(1)
    assert cos.min() > 1 - 1e-4, f"min cosine {cos.min()}"
    # each row's nearest reference row is its own: the order is the input order
    assert ((fast @ reference.T).argmax(1) == np.arange(len(fast))).all()


def test_fp32_path_is_exact(texts: list[str], reference: npt.NDArray[np.float32]) -> None:
    exact = MiniLMEmbedder(precision="fp32").embed(texts[:10])
    np.testing.assert_allclose(exact, reference[:10], atol=2e-5)


def test_order_batches_and_progress(
    embedder: MiniLMEmbedder, texts: list[str], fast: npt.NDArray[np.float32]
) -> None:
    small = MiniLMEmbedder(batch_size=4, precision=embedder.precision)  # type: ignore[arg-type]
    small._model, small._tokenizer, small._device = (
        embedder._model,
        embedder._tokenizer,
        embedder.device,
    )
    calls: list[tuple[int, int]] = []
    sample = texts[:20]
    got = small.embed(sample[::-1], progress=lambda d, t: calls.append((d, t)))
    cos = (got[::-1] * fast[:20]).sum(1)  # other batch shapes: rounding may differ in bf16
    assert cos.min() > 1 - 1e-4, f"min cosine {cos.min()}"
    assert calls[-1] == (20, 20) and len(calls) >= 5
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert embedder.embed([]).shape == (0, DIMENSION)


def test_paraphrase_closer_than_unrelated(embedder: MiniLMEmbedder) -> None:
    a, b, c = embedder.embed(
        [
            "How long do we have to answer a data access request?",
            "What is the deadline for responding to a subject access request?",
            "The mitochondria is the powerhouse of the cell.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.3
