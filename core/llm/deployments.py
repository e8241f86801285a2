"""From a deployment's configuration to a ready provider adapter: keys, capabilities, readiness."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from core.config import get_settings
from core.llm.config import DeploymentConfig
from core.llm.providers import make_provider
from core.llm.types import Capability, ChatProvider, ChatRequest, ProviderConfig


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""  # why not, for the Router page ("no OPENAI key configured")


def _key(dep: DeploymentConfig) -> str | None:
    if dep.api_key_env:
        return os.environ.get(dep.api_key_env) or None
    settings = get_settings()
    secret = {"openai": settings.openai_api_key, "anthropic": settings.anthropic_api_key}.get(
        dep.provider
    )
    return secret.get_secret_value() if secret else None


def readiness(dep: DeploymentConfig) -> Readiness:
    if not dep.enabled:
        return Readiness(False, "disabled")
    if dep.provider in ("openai", "anthropic") and not _key(dep):
        where = dep.api_key_env or f"OMNI_{dep.provider.upper()}_API_KEY"
        return Readiness(False, f"no key configured ({where})")
    return Readiness(True)


def provider_config(dep: DeploymentConfig) -> ProviderConfig:
    base_url = dep.base_url
    if dep.provider == "openai" and not base_url:
        base_url = get_settings().openai_base_url
    return ProviderConfig(
        kind=dep.provider, api_key=_key(dep), base_url=base_url, extra=dict(dep.options)
    )


class ProviderPool:
    """One adapter per distinct provider configuration, built on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._adapters: dict[tuple[object, ...], ChatProvider] = {}

    def get(self, dep: DeploymentConfig) -> ChatProvider:
        config = provider_config(dep)
        key = (config.kind, config.api_key, config.base_url, tuple(sorted(config.extra.items())))
        with self._lock:
            adapter = self._adapters.get(key)
            if adapter is None:
                adapter = self._adapters[key] = make_provider(config)
            return adapter


def required_capabilities(request: ChatRequest) -> frozenset[Capability]:
    needed = {Capability.TEXT}
    for attachment in request.attachments:
        needed.add(
            Capability.VISION if attachment.kind == "image" else Capability.AUDIO_TRANSCRIPTION
        )
    return frozenset(needed)


def capabilities(dep: DeploymentConfig, pool: ProviderPool) -> frozenset[Capability]:
    if dep.capabilities is not None:
        return frozenset(dep.capabilities)
    return pool.get(dep).capabilities(dep.model)
