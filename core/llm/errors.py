"""One hierarchy for every provider failure, so the router can decide what to do next.

Adapters translate vendor exceptions into these at their boundary; nothing vendor-specific leaks
out of `core/llm/providers/`.
"""

from __future__ import annotations

from core.errors import DomainError


class LLMError(DomainError):
    """A model call failed. `retryable` tells the router whether another try may succeed."""

    retryable = False
    kind = "error"

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class RateLimited(LLMError):
    """The provider refused for rate (HTTP 429). `retry_after_s` when it said how long to wait."""

    retryable = True
    kind = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = 429,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after_s = retry_after_s


class ProviderTimeout(LLMError):
    retryable = True
    kind = "timeout"


class ProviderUnavailable(LLMError):
    """5xx, connection refused or reset, malformed response: the deployment is unhealthy."""

    retryable = True
    kind = "unavailable"


class ProviderAuthError(LLMError):
    """Missing, wrong or revoked key (401/403). Retrying cannot help; another deployment might."""

    kind = "auth"


class BadRequest(LLMError):
    """The request itself is wrong (400/404/422: unknown model, context too long)."""

    kind = "bad_request"


class ContentFiltered(LLMError):
    """The provider's safety system refused the prompt or the answer."""

    kind = "content_filtered"


class UnsupportedCapability(LLMError):
    """The provider or model cannot take this input (an image, audio) or do this (embeddings)."""

    kind = "unsupported"


# Router-side refusals: no provider was called.


class NoDeploymentAvailable(LLMError):
    """Every deployment of the alias failed, is cooling down, or is over its limits."""

    retryable = True
    kind = "no_deployment"


class BudgetExceeded(LLMError):
    """The team's or customer's budget for the period is spent; traffic stops until it resets."""

    kind = "budget_exceeded"


class LimitExceeded(LLMError):
    """A deployment's own requests- or tokens-per-minute limit is reached."""

    retryable = True
    kind = "limit_exceeded"
