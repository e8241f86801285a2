"""The bundled all-MiniLM-L6-v2, for real: the project's embedder (default backend: ONNX Runtime,
int8, on this CPU) and its torch fallback against a plain transformers loop (batch 64, max length
256, fp32, input order) on ~50 texts of mixed length; the ONNX model cache (built once, re-used,
written atomically, one build under concurrency); backend and precision settings. Each model is
loaded once per session and the ONNX export runs once, into a session-wide OMNI_HOME."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from core.config import reload_settings
from core.embeddings import onnx_backend
from core.embeddings.minilm import DIMENSION, MAX_LENGTH, MiniLMEmbedder, model_dir
from core.errors import ConfigurationError

SAMPLE = (
    "the patient cohort showed reduced inflammation after treatment with the inhibitor while "
    "controls did not change and the effect persisted over twelve weeks of follow up in all "
    "sites across three countries with consistent dosing and careful monitoring of side effects"
)
WORDS = SAMPLE.split()
# int8 (dynamic quantisation, activation scales per batch): min cosine to fp32 measured 0.988
# over the 5,183 SciFact abstracts in token-budget batches, 0.979 one abstract per batch, and
# 0.977 between two batchings of these synthetic texts; mean 0.994. fp32/bf16 stay within 1e-4.
INT8_MIN_COS = 0.97
needs_onnx = pytest.mark.skipif(not onnx_backend.available(), reason="onnxruntime not installed")


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


def min_cos(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    cos = (a * b).sum(1)
    assert float(cos.mean()) > 0.99, f"mean cosine {cos.mean()}"  # int8 noise, not a wrong row
    return float(cos.min())


def bound(embedder: MiniLMEmbedder) -> float:
    return INT8_MIN_COS if embedder.precision == "int8" else 1 - 1e-4


@pytest.fixture(scope="module", autouse=True)
def omni_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One OMNI_HOME for the module (the ONNX cache lives there); no backend/precision override
    from the caller's environment."""
    home = tmp_path_factory.mktemp("omni_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMNI_HOME", str(home))
        mp.delenv("OMNI_EMBED_BACKEND", raising=False)
        mp.delenv("OMNI_EMBED_PRECISION", raising=False)
        reload_settings()
        yield home
    reload_settings()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return mixed_texts()


@pytest.fixture(scope="module")
def reference(texts: list[str]) -> npt.NDArray[np.float32]:
    return plain_loop(texts)


@pytest.fixture(scope="module")
def embedder(omni_home: Path) -> MiniLMEmbedder:
    return MiniLMEmbedder()  # the defaults: what ingestion and queries use


@pytest.fixture(scope="module")
def fast(embedder: MiniLMEmbedder, texts: list[str]) -> npt.NDArray[np.float32]:
    return embedder.embed(texts)


@pytest.fixture(scope="module")
def torch_fp32(omni_home: Path) -> MiniLMEmbedder:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMNI_EMBED_BACKEND", "torch")
        return MiniLMEmbedder(precision="fp32")


def test_shape_dtype_unit_norm(fast: npt.NDArray[np.float32]) -> None:
    assert fast.shape == (50, DIMENSION) and fast.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


def test_default_backend_on_cpu(embedder: MiniLMEmbedder, fast: npt.NDArray[np.float32]) -> None:
    if onnx_backend.available() and embedder.device == "cpu":
        assert (embedder.backend, embedder.precision) == ("onnx", "int8")
        assert embedder.onnx_path is not None and embedder.onnx_path.is_file()
    else:
        assert embedder.backend == "torch" and embedder.onnx_path is None


def test_fast_path_matches_plain_loop_in_input_order(
    embedder: MiniLMEmbedder, fast: npt.NDArray[np.float32], reference: npt.NDArray[np.float32]
) -> None:
    assert min_cos(fast, reference) > bound(embedder), f"min cosine {min_cos(fast, reference)}"
    # each row's nearest reference row is its own: the order is the input order
    assert ((fast @ reference.T).argmax(1) == np.arange(len(fast))).all()


def test_torch_fp32_path_is_exact(
    torch_fp32: MiniLMEmbedder, texts: list[str], reference: npt.NDArray[np.float32]
) -> None:
    exact = torch_fp32.embed(texts[:10])
    assert (torch_fp32.backend, torch_fp32.precision) == ("torch", "fp32")
    np.testing.assert_allclose(exact, reference[:10], atol=2e-5)


@needs_onnx
def test_onnx_fp32_path_matches(texts: list[str], reference: npt.NDArray[np.float32]) -> None:
    exact = MiniLMEmbedder(precision="fp32")
    got = exact.embed(texts)
    assert (exact.backend, exact.precision) == ("onnx", "fp32")
    assert min_cos(got, reference) > 1 - 1e-5
    np.testing.assert_allclose(got, reference, atol=1e-4)


def test_order_batches_and_progress(
    embedder: MiniLMEmbedder, texts: list[str], fast: npt.NDArray[np.float32]
) -> None:
    small = MiniLMEmbedder(batch_size=4)
    small._model, small._tokenizer, small._device = (  # share the loaded model
        embedder._model,
        embedder._tokenizer,
        embedder.device,
    )
    small.precision = embedder.precision
    calls: list[tuple[int, int]] = []
    sample = texts[:20]
    got = small.embed(sample[::-1], progress=lambda d, t: calls.append((d, t)))
    # other batch shapes: rounding differs in bf16, activation scales in int8
    assert min_cos(got[::-1], fast[:20]) > bound(embedder)
    assert calls[-1] == (20, 20) and len(calls) >= 5
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert embedder.embed([]).shape == (0, DIMENSION)


def test_single_query_matches_batch(
    embedder: MiniLMEmbedder, texts: list[str], fast: npt.NDArray[np.float32]
) -> None:
    one = embedder.embed([texts[3]])
    assert one.shape == (1, DIMENSION)
    assert min_cos(one, fast[3:4]) > bound(embedder)


def test_paraphrase_closer_than_unrelated(embedder: MiniLMEmbedder) -> None:
    a, b, c = embedder.embed(
        [
            "How long do we have to answer a data access request?",
            "What is the deadline for responding to a subject access request?",
            "The mitochondria is the powerhouse of the cell.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.3


@needs_onnx
def test_onnx_cache_is_reused_not_rebuilt(
    embedder: MiniLMEmbedder, fast: npt.NDArray[np.float32], omni_home: Path, monkeypatch: Any
) -> None:
    path = embedder.onnx_path
    assert path is not None
    assert path.parent.parent == omni_home / "cache" / "embeddings" and path.name == "model.onnx"
    # the build leaves no temporary file beside the model
    assert sorted(p.name for p in path.parent.iterdir()) == [".lock", "model.onnx"]
    stamp = path.stat().st_mtime_ns

    def no_export(*_: Any) -> None:
        raise AssertionError("the cached model should have been re-used")

    monkeypatch.setattr(onnx_backend, "_export", no_export)
    monkeypatch.setattr(onnx_backend, "_quantise", no_export)
    again = MiniLMEmbedder()
    got = again.embed(["doc 0: a short one"])
    assert again.onnx_path == path and path.stat().st_mtime_ns == stamp
    assert got.shape == (1, DIMENSION)


@needs_onnx
def test_model_path_copy_shares_the_cache(
    embedder: MiniLMEmbedder, texts: list[str], fast: npt.NDArray[np.float32], tmp_path: Path
) -> None:
    copy = tmp_path / "tuned"
    copy.mkdir()
    for f in model_dir().iterdir():
        if f.is_file():
            os.symlink(f, copy / f.name)
    tuned = MiniLMEmbedder(model_path=copy)
    got = tuned.embed(texts[:8])
    assert tuned.onnx_path == embedder.onnx_path  # same weights: same cache key
    assert min_cos(got, fast[:8]) > bound(embedder)


def test_model_path_missing_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        MiniLMEmbedder(model_path=tmp_path / "nope").embed(["x"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match=r"model\.safetensors"):
        onnx_backend.source_digest(tmp_path / "empty")


def test_cache_build_is_atomic_and_once(tmp_path: Path, monkeypatch: Any) -> None:
    """Concurrent callers build once under the lock; a failed build leaves nothing behind."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(onnx_backend, "cache_key", lambda d, v: f"key-{v}")
    builds: list[str] = []
    started = threading.Event()

    def fake_export(model_dir: Path, out: Path) -> None:
        builds.append("export")
        started.set()
        threading.Event().wait(0.2)  # hold the lock while the other caller arrives
        out.write_bytes(b"raw")

    def fake_optimise(model_dir: Path, raw: Path, out: Path) -> None:
        out.write_bytes(raw.read_bytes() + b"+fused")

    monkeypatch.setattr(onnx_backend, "_export", fake_export)
    monkeypatch.setattr(onnx_backend, "_optimise", fake_optimise)
    root = tmp_path / "cache"
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(onnx_backend.cached_model(src, "fp32", root))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == ["export"] and len(set(results)) == 1
    assert results[0].read_bytes() == b"raw+fused"
    assert sorted(p.name for p in results[0].parent.iterdir()) == [".lock", "model.onnx"]

    def failing(model_dir: Path, out: Path) -> None:
        out.write_bytes(b"half a fi")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_backend, "cache_key", lambda d, v: "key-failing")
    monkeypatch.setattr(onnx_backend, "_export", failing)
    with pytest.raises(RuntimeError, match="crashed"):
        onnx_backend.cached_model(src, "fp32", root)
    assert sorted(p.name for p in (root / "key-failing").iterdir()) == [".lock"]


def test_backend_env_var_torch(
    monkeypatch: Any, texts: list[str], reference: npt.NDArray[np.float32]
) -> None:
    monkeypatch.setenv("OMNI_EMBED_BACKEND", "torch")
    e = MiniLMEmbedder()
    got = e.embed(texts[:6])
    assert e.backend == "torch" and e.onnx_path is None and e.precision in ("fp32", "bf16")
    assert min_cos(got, reference[:6]) > 1 - 1e-4


@pytest.mark.parametrize(
    ("env", "precision", "message"),
    [
        ({"OMNI_EMBED_BACKEND": "tensorrt"}, None, "OMNI_EMBED_BACKEND='tensorrt'"),
        ({"OMNI_EMBED_PRECISION": "int4"}, None, "OMNI_EMBED_PRECISION='int4'"),
        ({"OMNI_EMBED_BACKEND": "onnx"}, "bf16", "needs OMNI_EMBED_BACKEND=torch"),
        ({"OMNI_EMBED_BACKEND": "torch"}, "int8", "needs OMNI_EMBED_BACKEND=onnx"),
    ],
)
def test_bad_settings_are_configuration_errors(
    monkeypatch: Any, env: dict[str, str], precision: Any, message: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigurationError, match=message):
        MiniLMEmbedder(precision=precision)


def test_onnx_backend_refuses_a_gpu(monkeypatch: Any) -> None:
    monkeypatch.setenv("OMNI_EMBED_BACKEND", "onnx")
    with pytest.raises(ConfigurationError, match="CPU only"):
        MiniLMEmbedder(device="cuda").embed(["x"])


@needs_onnx
def test_auto_falls_back_to_torch_when_onnx_fails(
    monkeypatch: Any, texts: list[str], reference: npt.NDArray[np.float32]
) -> None:
    def broken(*_: Any) -> Path:
        raise RuntimeError("exporter cannot handle this model")

    monkeypatch.setattr(onnx_backend, "cached_model", broken)
    auto = MiniLMEmbedder()
    assert min_cos(auto.embed(texts[:4]), reference[:4]) > 1 - 1e-4
    assert auto.backend == "torch"
    monkeypatch.setenv("OMNI_EMBED_BACKEND", "onnx")
    with pytest.raises(RuntimeError, match="cannot handle"):
        MiniLMEmbedder().embed(texts[:1])
