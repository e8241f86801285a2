"""The vendor-neutral half of the adapters' mapping: HTTP status and Retry-After to the
`core.llm.errors` classes, actionable messages, input checks, and keeping secrets out of text.

Pure functions only: no SDK, no network. `openai_mapping` and `anthropic_mapping` call these
after pulling status, headers and body out of their vendor's exceptions.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from core.clock import utcnow
from core.errors import ConfigurationError
from core.llm.errors import (
    BadRequest,
    ContentFiltered,
    LLMError,
    ProviderAuthError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    UnsupportedCapability,
)
from core.llm.types import Capability, ChatRequest

DEFAULT_TIMEOUT_S = 60.0  # for calls without a ChatRequest (embeddings, transcription)
_DETAIL_LIMIT = 240
_REDACTED = "[redacted]"
# Key-shaped strings a vendor may quote back, even partly masked ("sk-abc***xyz").
_KEY_SHAPES = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-.*]{6,}|\bBearer\s+\S+", re.IGNORECASE)


@dataclass(frozen=True)
class CallContext:
    """What an error message may say about the call that failed, and what it must not."""

    provider: str  # the adapter's `name`, e.g. "openai"
    label: str  # how a person calls it, e.g. "OpenAI"
    model: str
    base_url: str
    timeout_s: float
    # Scrubbed from any vendor text passed on; kept out of repr so logging a context is safe.
    secrets: tuple[str, ...] = field(default=(), repr=False)


# -- text hygiene ------------------------------------------------------------------------------


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secrets or anything shaped like an API key or bearer token."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    return _KEY_SHAPES.sub(_REDACTED, text)


def detail(text: object, ctx: CallContext) -> str:
    """A vendor's own explanation, scrubbed, on one line and short enough for a message."""
    if not isinstance(text, str) or not text.strip():
        return ""
    one_line = " ".join(scrub(text, ctx.secrets).split())
    if len(one_line) > _DETAIL_LIMIT:
        one_line = one_line[: _DETAIL_LIMIT - 1].rstrip() + "…"
    return one_line


def safe_url(url: str) -> str:
    """The URL without user info, query or fragment, fit to show (`https://host:port/path`)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the configured base URL"
    if not parts.scheme or not parts.hostname:
        return "the configured base URL"
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


# -- Retry-After -------------------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms`, or `retry-after` as seconds or an HTTP date.

    None when absent or unreadable; a date in the past gives 0.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = _finite_non_negative(lowered.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    seconds = _finite_non_negative(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or utcnow())).total_seconds())


def _finite_non_negative(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


# -- errors ------------------------------------------------------------------------------------


def error_for_status(
    status: int,
    ctx: CallContext,
    *,
    vendor_detail: str = "",
    retry_after_s: float | None = None,
    request_id: str | None = None,
) -> LLMError:
    """The `LLMError` for an HTTP error status, with a message a person can act on."""
    where = f"{ctx.label} (model {ctx.model!r})" if ctx.model else ctx.label
    said = f": {vendor_detail}" if vendor_detail else ""
    ref = f" [request id {request_id}]" if request_id else ""
    if status == 429:
        wait = (
            f"it asks to wait {retry_after_s:g} s"
            if retry_after_s is not None
            else "wait a moment or route to another deployment"
        )
        return RateLimited(
            f"{where} is rate limiting requests (HTTP 429){said}; {wait}.{ref}",
            provider=ctx.provider,
            retry_after_s=retry_after_s,
        )
    if status == 401:
        # No vendor text here: it is where services quote the rejected key back.
        return ProviderAuthError(
            f"{ctx.label} rejected the API key (HTTP 401). Check the key configured for this "
            f"provider: it may be wrong, expired or revoked.{ref}",
            provider=ctx.provider,
            status=status,
        )
    if status == 403:
        return ProviderAuthError(
            f"{where} refused access (HTTP 403). Check that the key's project or workspace may "
            f"use this model and endpoint.{ref}",
            provider=ctx.provider,
            status=status,
        )
    if status == 402:
        return ProviderAuthError(
            f"{ctx.label} refused the request for billing reasons (HTTP 402){said}. Check the "
            f"account's credit and payment settings; retrying will not help.{ref}",
            provider=ctx.provider,
            status=status,
        )
    if status in (408, 504):
        return ProviderTimeout(
            f"{where} timed out on its side (HTTP {status}); try again or use another "
            f"deployment.{ref}",
            provider=ctx.provider,
            status=status,
        )
    if status >= 500 or status == 409:
        return ProviderUnavailable(
            f"{where} failed on its side (HTTP {status}){said}; try again shortly or use another "
            f"deployment.{ref}",
            provider=ctx.provider,
            status=status,
        )
    if status == 404:
        return BadRequest(
            f"{where} was not found (HTTP 404){said}. Check the model name and the base URL "
            f"({safe_url(ctx.base_url)}).{ref}",
            provider=ctx.provider,
            status=status,
        )
    if 400 <= status < 500:
        return BadRequest(
            f"{where} rejected the request (HTTP {status}){said}. Check the model name and the "
            f"request's parameters and attachments.{ref}",
            provider=ctx.provider,
            status=status,
        )
    return ProviderUnavailable(
        f"{where} answered with unexpected HTTP {status}{said}; try again or use another "
        f"deployment.{ref}",
        provider=ctx.provider,
        status=status,
    )


def timeout_error(ctx: CallContext) -> ProviderTimeout:
    return ProviderTimeout(
        f"{ctx.label} did not answer within {ctx.timeout_s:g} s (model {ctx.model!r}). Try again, "
        "raise the timeout, or use another deployment.",
        provider=ctx.provider,
    )


def connection_error(ctx: CallContext, reason: object = None) -> ProviderUnavailable:
    why = f" ({detail(str(reason), ctx)})" if reason else ""
    return ProviderUnavailable(
        f"Could not reach {ctx.label} at {safe_url(ctx.base_url)}{why}. Check the base URL, "
        "that the server is running, and the network between them.",
        provider=ctx.provider,
    )


def dropped_stream_error(ctx: CallContext, reason: object = None) -> ProviderUnavailable:
    why = f" ({detail(str(reason), ctx)})" if reason else ""
    return ProviderUnavailable(
        f"{ctx.label} stopped sending the answer part-way (model {ctx.model!r}){why}; try again "
        "or use another deployment.",
        provider=ctx.provider,
    )


def malformed_error(ctx: CallContext, what: str) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"{ctx.label} sent a response that could not be read ({what}) for model "
        f"{ctx.model!r}. The server may be unhealthy, or not speak this API at "
        f"{safe_url(ctx.base_url)}.",
        provider=ctx.provider,
    )


def content_filtered_error(ctx: CallContext, status: int | None = None) -> ContentFiltered:
    return ContentFiltered(
        f"{ctx.label}'s safety system stopped the answer (model {ctx.model!r}). Rephrase the "
        "prompt or remove the flagged content; retrying the same request will not help.",
        provider=ctx.provider,
        status=status,
    )


def quota_error(ctx: CallContext, status: int | None) -> ProviderAuthError:
    return ProviderAuthError(
        f"{ctx.label} says the account has run out of quota or credit. Check the plan and "
        "billing settings; retrying will not help.",
        provider=ctx.provider,
        status=status,
    )


def unexpected_error(ctx: CallContext, what: str) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"The call to {ctx.label} (model {ctx.model!r}) failed: {what}. Try again or use "
        "another deployment.",
        provider=ctx.provider,
    )


def missing_key_error(ctx: CallContext) -> ProviderAuthError:
    return ProviderAuthError(
        f"No API key is configured for {ctx.label}. Set the provider's API key in the gateway "
        "settings.",
        provider=ctx.provider,
    )


# -- checks before a call ----------------------------------------------------------------------


def check_chat_request(request: ChatRequest, ctx: CallContext) -> None:
    """Refuse, before any network call, what no chat call can carry.

    Whether a model takes images is the router's call (it honours per-deployment capability
    overrides); a model that cannot is refused by the vendor, which maps to BadRequest.
    """
    if not request.model:
        raise BadRequest(
            f"The request to {ctx.label} names no model; the router fills it in from the "
            "deployment.",
            provider=ctx.provider,
        )
    for message in request.messages:
        for attachment in message.attachments:
            if attachment.kind == "audio":
                raise UnsupportedCapability(
                    f"{ctx.label} chat does not take audio attachments; transcribe the audio "
                    "first and send the text.",
                    provider=ctx.provider,
                )
            if message.role != "user":
                raise UnsupportedCapability(
                    f"Images can only be attached to user messages (found one on a "
                    f"{message.role} message).",
                    provider=ctx.provider,
                )


# -- settings ----------------------------------------------------------------------------------


def timeout_setting(extra: Mapping[str, str], provider: str) -> float:
    raw = extra.get("timeout_s")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    value = _finite_non_negative(raw)
    if not value:
        raise ConfigurationError(
            f"The {provider} provider's timeout_s must be a positive number of seconds, "
            f"not {raw!r}."
        )
    return value


def flag_setting(extra: Mapping[str, str], key: str, provider: str) -> bool:
    raw = extra.get(key, "false").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off", ""):
        return False
    raise ConfigurationError(f"The {provider} provider's {key} must be true or false, not {raw!r}.")


def capabilities_setting(extra: Mapping[str, str], provider: str) -> frozenset[Capability]:
    """Capabilities named in a comma-separated setting (`"vision, embeddings"`)."""
    names = [n.strip().lower() for n in extra.get("capabilities", "").split(",") if n.strip()]
    valid = {c.value: c for c in Capability}
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ConfigurationError(
            f"Unknown capabilities {', '.join(unknown)} for the {provider} provider. Valid "
            f"capabilities: {', '.join(sorted(valid))}."
        )
    return frozenset(valid[n] for n in names)
