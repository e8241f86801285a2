"""The process-wide local model: tokenizer + fast decoder behind one lock, producing text.

Streamlit runs each session in its own thread; the model (and its KV cache) is shared, so it is
loaded once per process and one generation runs at a time. Waiting for the lock counts against
the request's timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from core.llm.errors import BadRequest, ProviderTimeout
from core.llm.local.decoder import LlamaDecoder, Sampling, WeightFormat
from core.llm.local.loader import MODEL_NAME, LoadReport, cache_dir, load_pretrained

log = logging.getLogger(__name__)

StopReason = Literal["stop", "length"]


@dataclass(frozen=True)
class ModelOptions:
    """How the model runs; one loaded model per distinct set (normally just one per process)."""

    device: str = "auto"  # "auto": CUDA when available
    weights: WeightFormat | None = None  # None: the decoder's default for the device
    cuda_graphs: bool = True
    threads: int | None = None  # torch intra-op threads; None leaves torch's default

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


@dataclass(frozen=True)
class Generated:
    """The end of a generation."""

    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: StopReason
    token_ids: tuple[int, ...] = field(repr=False, default=())


@dataclass(frozen=True)
class TextEvent:
    """A piece of generated text; the last event has `done` set and no text."""

    delta: str = ""
    done: Generated | None = None


class LocalModel:
    def __init__(self, tokenizer: Any, decoder: LlamaDecoder, report: LoadReport) -> None:
        self.tokenizer = tokenizer
        self.decoder = decoder
        self.load_report = report
        self.name = MODEL_NAME
        # <|im_end|>, which is also the model's generation_config end-of-sequence.
        self.eos_ids = frozenset({int(tokenizer.eos_token_id)})
        self._lock = threading.Lock()

    @property
    def max_context(self) -> int:
        return self.decoder.max_context

    def encode_chat(self, messages: Sequence[tuple[str, str]]) -> list[int]:
        """Token ids of (role, content) messages in the model's chat template, ready to answer."""
        chat = [{"role": role, "content": content} for role, content in messages]
        encoded = self.tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return [int(i) for i in encoded["input_ids"]]

    def stream(
        self,
        prompt: list[int],
        *,
        max_new_tokens: int,
        sampling: Sampling | None = None,
        stop: Sequence[str] = (),
        deadline: float | None = None,
    ) -> Iterator[TextEvent]:
        """Generate an answer to `prompt` (token ids), as text pieces and a final summary.

        Stops at end-of-sequence or a stop sequence (finish "stop"; the stop text is not part of
        the answer) or after `max_new_tokens` (finish "length", also when the context is full).
        `deadline` (time.perf_counter()) bounds the wait for the model and the generation.
        The model stays locked until the iterator is exhausted or closed: close it (or drop it)
        when stopping early.
        """
        room = self.max_context - len(prompt)
        if room < 1:
            raise BadRequest(
                f"The prompt is {len(prompt):,} tokens; {self.name} takes at most "
                f"{self.max_context - 1:,}.",
                provider="local",
            )
        budget = min(max_new_tokens, room)
        wait = -1.0 if deadline is None else max(0.0, deadline - time.perf_counter())
        if not self._lock.acquire(timeout=wait):
            raise ProviderTimeout("The local model stayed busy past the timeout.", provider="local")
        try:
            yield from self._generate(
                prompt, budget, sampling, tuple(s for s in stop if s), deadline
            )
        finally:
            self._lock.release()

    def greedy_tokens(self, prompt: list[int], max_new_tokens: int) -> list[int]:
        """Greedy token ids without detokenising or stop handling (parity tests, benchmarks)."""
        with self._lock:
            return list(self.decoder.generate(prompt, max_new_tokens, stop_ids=self.eos_ids))

    def _generate(
        self,
        prompt: list[int],
        budget: int,
        sampling: Sampling | None,
        stop: tuple[str, ...],
        deadline: float | None,
    ) -> Iterator[TextEvent]:
        tokens: list[int] = []
        text = ""
        sent = 0  # characters of `text` already yielded
        # Detokenise incrementally: the text of tokens[:mark] is settled (it ended on a whole
        # character, and byte-level BPE decodes a concatenation to the concatenated text), so each
        # step decodes a short tail. Half a character at the end (U+FFFD) waits for more tokens.
        settled, mark = "", 0
        reason: StopReason = "length"
        for token in self.decoder.generate(prompt, budget, sampling, self.eos_ids):
            if deadline is not None and time.perf_counter() > deadline:
                raise ProviderTimeout(
                    f"The local model passed the timeout after {len(tokens)} tokens.",
                    provider="local",
                )
            tokens.append(token)
            if token in self.eos_ids:
                reason = "stop"
                break
            tail = self.tokenizer.decode(tokens[mark:], skip_special_tokens=True)
            text = settled + tail.rstrip("\ufffd")
            if len(tokens) - mark >= _SETTLE_EVERY and not tail.endswith("\ufffd"):
                settled, mark = text, len(tokens)
            cut = _find_stop(text, stop, max(0, sent - _longest(stop)))
            if cut is not None:
                text, reason = text[:cut], "stop"
                break
            safe = len(text) - _held_back(text, stop)
            if safe > sent:
                yield TextEvent(delta=text[sent:safe])
                sent = safe
        if len(text) > sent:
            yield TextEvent(delta=text[sent:])
        yield TextEvent(
            done=Generated(
                text=text,
                input_tokens=len(prompt),
                output_tokens=len(tokens),
                finish_reason=reason,
                token_ids=tuple(tokens),
            )
        )


_SETTLE_EVERY = 16  # tokens


def _longest(stop: tuple[str, ...]) -> int:
    return max((len(s) for s in stop), default=0)


def _find_stop(text: str, stop: tuple[str, ...], start: int) -> int | None:
    """Index of the earliest stop sequence in text[start:], if any."""
    hits = [i for i in (text.find(s, start) for s in stop) if i >= 0]
    return min(hits) if hits else None


def _held_back(text: str, stop: tuple[str, ...]) -> int:
    """How many trailing characters could still become a stop sequence, so are not sent yet."""
    held = 0
    for s in stop:
        for n in range(min(len(s) - 1, len(text)), held, -1):
            if text.endswith(s[:n]):
                held = n
                break
    return held


# -- the process-wide instance -------------------------------------------------------------------

_models: dict[tuple[ModelOptions, str], LocalModel] = {}
_models_lock = threading.Lock()


def get_local_model(options: ModelOptions | None = None) -> LocalModel:
    """The loaded model for `options` and the current OMNI_HOME, loading it on first use.

    Thread-safe: concurrent first calls load once, the others wait for it.
    """
    options = options or ModelOptions()
    key = (options, str(cache_dir().resolve()))
    model = _models.get(key)
    if model is not None:
        return model
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = load_local_model(options)
            _models[key] = model
        return model


def load_local_model(options: ModelOptions | None = None, home: Path | None = None) -> LocalModel:
    """A new LocalModel (not cached); `get_local_model` is what callers normally want."""
    options = options or ModelOptions()
    if options.threads:
        torch.set_num_threads(options.threads)
    device = options.resolved_device()
    # Loaded on the CPU in fp32 whatever the device: the decoder copies the weights it needs in
    # its own formats onto the device, and the transformers model is then dropped.
    tokenizer, model, report = load_pretrained(home, device="cpu")
    decoder = LlamaDecoder(
        model, device=device, weights=options.weights, cuda_graphs=options.cuda_graphs
    )
    log.info("Local model decoding on %s with %s weights", device, decoder.weights)
    return LocalModel(tokenizer, decoder, report)


def clear_local_models() -> None:
    """Forget the loaded models (tests)."""
    with _models_lock:
        _models.clear()
