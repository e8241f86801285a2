"""The router's configuration: deployments grouped under aliases, strategies, resilience knobs.

Written in YAML, validated here, stored as versions in the database (`RouterConfigVersion`); the
newest version is active and the bundled `default_router.yaml` is the first one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from core.errors import ValidationError
from core.llm.providers import PROVIDERS
from core.llm.types import Capability

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_router.yaml")
Strategy = Literal["priority", "weighted", "latency", "cost"]
Tier = Literal["small", "medium", "large"]
TIER_RANK: dict[str, int] = {"small": 0, "medium": 1, "large": 2}
MAX_YAML_BYTES = 200_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeploymentConfig(_Strict):
    provider: str
    model: str = Field(min_length=1, max_length=128)
    base_url: str | None = None  # OpenAI-compatible servers (Ollama, vLLM, LM Studio)
    api_key_env: str | None = None  # environment variable holding this deployment's key
    tier: Tier = "medium"
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=60.0, gt=0, le=600)
    max_retries: int = Field(default=2, ge=0, le=10)
    weight: float = Field(default=1.0, gt=0)
    priority: int = 0
    capabilities: list[Capability] | None = None  # overrides what the provider declares
    enabled: bool = True
    # Adapter options: local {device: cuda, weights: int4}, anthropic {send_temperature: "true"}
    options: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_provider(self) -> DeploymentConfig:
        if self.provider not in PROVIDERS:
            valid = ", ".join(sorted(PROVIDERS))
            raise ValueError(f"unknown provider {self.provider!r} (valid: {valid})")
        if self.provider == "openai_compatible" and not self.base_url:
            raise ValueError("an openai_compatible deployment needs base_url")
        return self


class AliasConfig(_Strict):
    strategy: Strategy = "priority"
    deployments: list[str] = Field(min_length=1)
    required_tier: Tier | None = None  # for "cost": the cheapest deployment at least this capable


class CircuitConfig(_Strict):
    failure_threshold: int = Field(default=3, ge=1)
    window_s: float = Field(default=60.0, gt=0)
    cooldown_s: float = Field(default=30.0, gt=0)


class RetryConfig(_Strict):
    base_delay_s: float = Field(default=0.2, ge=0)
    max_delay_s: float = Field(default=4.0, ge=0)
    # A 429 asking to wait longer than this moves on to the next deployment instead of sleeping.
    max_retry_after_s: float = Field(default=2.0, ge=0)


class CacheConfig(_Strict):
    exact_ttl_s: int = Field(default=300, ge=0)  # 0 turns the exact-match cache off
    semantic: bool = False
    semantic_threshold: float = Field(default=0.95, gt=0, le=1)


class RouterConfig(_Strict):
    deployments: dict[str, DeploymentConfig]
    aliases: dict[str, AliasConfig]
    circuit: CircuitConfig = CircuitConfig()
    retry: RetryConfig = RetryConfig()
    cache: CacheConfig = CacheConfig()
    store_bodies: bool = False  # prompts/answers in the ledger, PII-redacted, only when on

    @model_validator(mode="after")
    def _aliases_name_deployments(self) -> RouterConfig:
        for alias, cfg in self.aliases.items():
            missing = [d for d in cfg.deployments if d not in self.deployments]
            if missing:
                raise ValueError(f"alias {alias!r} names unknown deployments: {', '.join(missing)}")
        return self


def parse_config(text: str) -> RouterConfig:
    """Validate YAML text; every problem is reported with where it is."""
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise ValidationError(f"The router configuration is over {MAX_YAML_BYTES:,} bytes.")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"The router configuration is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationError(
            "The router configuration must be a mapping with 'deployments' and 'aliases'."
        )
    try:
        return RouterConfig.model_validate(data)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise ValidationError(f"Invalid router configuration: {problems}") from None


def default_config_text() -> str:
    return DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
