"""The bundled SmolLM2 model, for real: converted once from its GGUF into a temporary OMNI_HOME,
then driven through `LocalProvider` and the fast decoder. Answers are kept short: the whole module
runs in well under a minute on 2 CPU cores, most of it the one GGUF conversion."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from core.config import reload_settings
from core.llm.errors import ProviderTimeout, UnsupportedCapability
from core.llm.local.decoder import LlamaDecoder
from core.llm.local.engine import (
    LocalModel,
    _find_stop,
    _held_back,
    get_local_model,
)
from core.llm.local.loader import CACHE_NAME, LoadReport, load_pretrained
from core.llm.providers import make_provider
from core.llm.types import Attachment, ChatProvider, ChatRequest, Message, ProviderConfig
from tests.conftest import use_home

# Greedy parity needs prompts without near-ties: in fp32 the top two logits of every one of these
# answers' first PARITY_TOKENS tokens are at least 0.24 apart (measured), while half-precision
# weights move logits by up to ~0.16. A prompt with a near-tie (some have gaps of 0.01) can flip a
# token under any change of arithmetic, which is no decoding bug.
PARITY_PROMPTS = ("List three uses of Python.", "Give me a recipe for pancakes.")
PARITY_TOKENS = 24


@dataclass
class Bundle:
    home: Path
    local: LocalModel  # what the provider uses, loaded cold from the GGUF
    tokenizer: Any
    reference: Any  # the transformers model, loaded again (warm, from the cache)
    warm: LoadReport


@pytest.fixture(scope="session")
def bundle(local_model_home: Path) -> Bundle:
    """The run's one cold load (tests/conftest.py: `local_model_home`), and a warm one here."""
    home = local_model_home
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMNI_HOME", str(home))
        reload_settings()
        local = get_local_model()  # already loaded by local_model_home
        tokenizer, reference, warm = load_pretrained(home, device="cpu")
    reload_settings()
    return Bundle(home, local, tokenizer, reference, warm)


@pytest.fixture
def provider(bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> ChatProvider:
    use_home(monkeypatch, bundle.home)  # so the provider finds the model loaded above
    return make_provider(ProviderConfig(kind="local"))


def ask(prompt: str, **params: Any) -> ChatRequest:
    params.setdefault("temperature", 0.0)
    params.setdefault("max_tokens", 16)
    return ChatRequest.simple(prompt, **params)


def test_first_load_converts_and_caches_under_omni_home(bundle: Bundle) -> None:
    cold = bundle.local.load_report
    assert cold.source == "gguf" and cold.cache_written
    assert cold.cache_dir == bundle.home / "models" / CACHE_NAME
    assert (cold.cache_dir / "model.safetensors").stat().st_size > 100_000_000
    assert bundle.warm.source == "cache" and not bundle.warm.cache_written
    assert bundle.warm.seconds < cold.seconds


def test_chat_answers_with_token_counts(provider: ChatProvider) -> None:
    result = provider.chat(ask("What is the capital of France?", max_tokens=24))
    assert "Paris" in result.text
    assert result.input_tokens > 10  # the chat template adds a system prompt
    assert 0 < result.output_tokens <= 24
    assert result.finish_reason == "stop"
    assert result.provider == "local" and result.model == "SmolLM2-135M-Instruct"
    assert result.latency_ms > 0


def test_stream_deltas_add_up_to_the_result(provider: ChatProvider) -> None:
    events = list(provider.stream(ask("Write a haiku about the sea.", temperature=0.8)))
    *deltas, last = events
    assert last.result is not None and all(e.result is None for e in deltas)
    assert len(deltas) > 1
    assert "".join(e.delta for e in deltas) == last.result.text


def test_streamed_text_is_the_decoded_answer(bundle: Bundle) -> None:
    """Incremental detokenising (a settled prefix plus a short tail) equals decoding it all."""
    question = "Translate 'good morning' into Japanese and Russian."  # multi-byte characters
    prompt = bundle.local.encode_chat([("user", question)])
    events = list(bundle.local.stream(prompt, max_new_tokens=48))
    done = events[-1].done
    assert done is not None
    assert "".join(e.delta for e in events[:-1]) == done.text
    whole = bundle.tokenizer.decode(list(done.token_ids), skip_special_tokens=True)
    assert done.text == whole.rstrip("\ufffd")


def test_temperature_zero_is_deterministic(provider: ChatProvider) -> None:
    request = ask("Name a colour of the rainbow.")
    assert provider.chat(request).text == provider.chat(request).text


def test_max_tokens_cuts_the_answer(provider: ChatProvider) -> None:
    result = provider.chat(ask("Tell me a long story about a dragon.", max_tokens=5))
    assert result.output_tokens == 5
    assert result.finish_reason == "length"


def test_stop_sequence_ends_the_answer_before_it(provider: ChatProvider) -> None:
    prompt = "Count from 1 to 10, separated by commas."
    full = provider.chat(ask(prompt, max_tokens=32)).text
    assert "5" in full
    events = list(provider.stream(ask(prompt, max_tokens=32, stop=("5",))))
    result = events[-1].result
    assert result is not None
    assert result.text == full[: full.index("5")]
    assert result.finish_reason == "stop"
    assert "".join(e.delta for e in events[:-1]) == result.text  # the stop text never streamed


@pytest.mark.parametrize(
    ("text", "stop", "held"),
    [
        ("Hello wor", ("world",), 3),  # might become "world": hold "wor" back
        ("Hello world", ("world",), 0),  # complete: _find_stop's job, nothing partial left
        ("Hello w", ("xyz", "wave"), 1),
        ("Hello", (), 0),
    ],
)
def test_partial_stop_sequences_are_held_back(text: str, stop: tuple[str, ...], held: int) -> None:
    assert _held_back(text, stop) == held


def test_earliest_stop_sequence_wins() -> None:
    assert _find_stop("a, b. c! d", (".", ","), 0) == 1
    assert _find_stop("a, b. c! d", ("?",), 0) is None


def test_timeout_stops_generation(provider: ChatProvider) -> None:
    with pytest.raises(ProviderTimeout):
        provider.chat(ask("Tell me a long story about a dragon.", timeout_s=0.001))


def test_attachments_are_refused(provider: ChatProvider) -> None:
    image = Attachment("image", b"\x89PNG", "image/png")
    request = ChatRequest(messages=(Message("user", "What is this?", (image,)),))
    with pytest.raises(UnsupportedCapability):
        provider.chat(request)


def test_fast_decoder_matches_generate_greedy(bundle: Bundle) -> None:
    """The provider's decoder, and its CUDA-graph-shaped step run eagerly, against fp32
    `model.generate`, token for token."""
    graph_shaped = LlamaDecoder(bundle.reference, device="cpu", static_steps=True, max_context=256)
    for prompt in PARITY_PROMPTS:
        ids = bundle.local.encode_chat([("user", prompt)])
        with torch.inference_mode():
            expected = bundle.reference.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=PARITY_TOKENS,
                do_sample=False,
            )[0, len(ids) :].tolist()
        assert bundle.local.greedy_tokens(ids, PARITY_TOKENS) == expected, prompt
        assert list(graph_shaped.generate(ids, PARITY_TOKENS, stop_ids=bundle.local.eos_ids)) == (
            expected
        ), prompt
