"""Provider registry: a config string picks the adapter, imported only when first used."""

from __future__ import annotations

import importlib

from core.errors import ConfigurationError
from core.llm.types import ChatProvider, ProviderConfig

# kind -> "module:Class". The vendor SDKs are imported only by the adapter that needs them.
PROVIDERS: dict[str, str] = {
    "openai": "core.llm.providers.openai_provider:OpenAIProvider",
    "openai_compatible": "core.llm.providers.openai_provider:OpenAICompatibleProvider",
    "anthropic": "core.llm.providers.anthropic_provider:AnthropicProvider",
    "local": "core.llm.providers.local_provider:LocalProvider",
}


def make_provider(config: ProviderConfig) -> ChatProvider:
    target = PROVIDERS.get(config.kind)
    if target is None:
        valid = ", ".join(sorted(PROVIDERS))
        raise ConfigurationError(f"Unknown LLM provider {config.kind!r}. Valid providers: {valid}.")
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    provider: ChatProvider = cls(config)
    return provider
