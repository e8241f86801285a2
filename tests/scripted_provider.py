"""An in-memory provider for router tests: each model name has a script of outcomes.

Router tests are about the router's own decisions (order, retries, circuits, limits, budgets,
cache), so the provider is scripted here; the vendor adapters are tested against wire-format
servers in tests/fakes.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator

from core.llm.errors import LLMError
from core.llm.types import Capability, ChatRequest, ChatResult, ProviderConfig, StreamEvent

SCRIPTS: dict[str, deque[LLMError | str]] = defaultdict(deque)
CALLS: dict[str, int] = defaultdict(int)
DELAY_S: dict[str, float] = {}
_lock = threading.Lock()


def reset() -> None:
    SCRIPTS.clear()
    CALLS.clear()
    DELAY_S.clear()


def script(model: str, *outcomes: LLMError | str) -> None:
    """Queue outcomes for `model`: an LLMError to raise, or the text to answer. When the script
    runs out the model answers 'ok from <model>'."""
    SCRIPTS[model].extend(outcomes)


class ScriptedProvider:
    name = "scripted"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def capabilities(self, model: str) -> frozenset[Capability]:
        caps = {Capability.TEXT}
        if "vision" in model:
            caps.add(Capability.VISION)
        return frozenset(caps)

    def chat(self, request: ChatRequest) -> ChatResult:
        with _lock:
            CALLS[request.model] += 1
            outcome = SCRIPTS[request.model].popleft() if SCRIPTS[request.model] else None
        if DELAY_S.get(request.model):
            time.sleep(DELAY_S[request.model])
        if isinstance(outcome, LLMError):
            raise outcome
        text = outcome or f"ok from {request.model}"
        return ChatResult(
            text=text,
            model=request.model,
            input_tokens=100,
            output_tokens=50,
            latency_ms=1.0,
            finish_reason="stop",
            provider=self.name,
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        result = self.chat(request)
        for word in result.text.split(" "):
            yield StreamEvent(delta=word + " ")
        yield StreamEvent(result=result)
