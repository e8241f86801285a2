"""The multi-LLM router: picks deployments for an alias, retries, fails over, enforces circuit
breakers, rate limits and budgets, caches, prices every call and records it in the ledger."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Literal

import numpy as np

from core.auth.actor import Actor
from core.clock import utcnow
from core.llm import cache as response_cache
from core.llm.config import TIER_RANK, DeploymentConfig, RouterConfig
from core.llm.deployments import ProviderPool, capabilities, readiness, required_capabilities
from core.llm.errors import (
    BadRequest,
    BudgetExceeded,
    ContentFiltered,
    LimitExceeded,
    LLMError,
    NoDeploymentAvailable,
    RateLimited,
    UnsupportedCapability,
)
from core.llm.ledger import LEDGER, LedgerWriter, UsageRecord
from core.llm.pricing import PRICE_BOOK, PriceBook
from core.llm.state import CircuitSnapshot, RouterState
from core.llm.types import (
    Attachment,
    ChatProvider,
    ChatRequest,
    ChatResult,
    StreamEvent,
    TranscriptionProvider,
)
from core.money import format_usd
from core.privacy.redact import redact

# Failures that say the deployment is unhealthy (they count towards opening its circuit).
_UNHEALTHY = ("timeout", "unavailable", "auth")


@dataclass(frozen=True)
class CallContext:
    actor: Actor
    team: str = ""  # defaults to the actor's role: budgets per team then work with no set-up
    customer_id: int | None = None
    use_cache: bool = True
    end_user: str | None = None  # the customer's id for the person the call serves
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def team_name(self) -> str:
        return self.team or self.actor.role.value


@dataclass(frozen=True)
class Budget:
    scope: str  # "team" | "customer"
    subject: str
    limit_micros: int


BudgetLoader = Callable[[], list[Budget]]
SpendLoader = Callable[[str, str, datetime], int]  # (scope, subject, period start) -> micros


@dataclass(frozen=True)
class DeploymentStatus:
    name: str
    provider: str
    model: str
    tier: str
    ready: bool
    reason: str
    circuit: CircuitSnapshot
    latency_ms: float | None
    rpm: int | None
    tpm: int | None


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _audio(request: ChatRequest) -> Attachment | None:
    return next((a for a in request.attachments if a.kind == "audio"), None)


def _invoke(provider: ChatProvider, request: ChatRequest) -> ChatResult:
    """Chat, or transcription when the request carries audio (Whisper-style deployments)."""
    audio = _audio(request)
    if audio is None:
        return provider.chat(request)
    if not isinstance(provider, TranscriptionProvider):
        raise UnsupportedCapability(f"{provider.name} cannot transcribe audio.")
    return provider.transcribe(audio, request.model)


def _invoke_stream(provider: ChatProvider, request: ChatRequest) -> Iterator[StreamEvent]:
    if _audio(request) is None:
        yield from provider.stream(request)
        return
    result = _invoke(provider, request)  # transcription APIs answer in one piece
    yield StreamEvent(delta=result.text)
    yield StreamEvent(result=result)


def _for_deployment(request: ChatRequest, dep: DeploymentConfig) -> ChatRequest:
    """The request as this deployment receives it: its model, and the tighter of both timeouts."""
    return replace(request, model=dep.model, timeout_s=min(request.timeout_s, dep.timeout_s))


def _estimate_tokens(request: ChatRequest) -> int:
    return sum(len(m.content) for m in request.messages) // 4 + request.max_tokens


class Router:
    def __init__(
        self,
        config: RouterConfig,
        state: RouterState,
        *,
        budgets: BudgetLoader = list,
        spend: SpendLoader | None = None,
        pool: ProviderPool | None = None,
        price_book: PriceBook = PRICE_BOOK,
        ledger: LedgerWriter = LEDGER,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        embed: Callable[[str], np.ndarray] | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self._budgets = budgets
        self._spend = spend or (lambda scope, subject, since: 0)
        self.pool = pool or ProviderPool()
        self._prices = price_book
        self._ledger = ledger
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 (load balancing, not secrets)
        self._embed = embed
        self._semantic = response_cache.SemanticIndex()

    # --- public API ---------------------------------------------------------------------------

    def chat(self, alias: str, request: ChatRequest, ctx: CallContext) -> ChatResult:
        return self._serve(alias, self._ordered(alias, request), request, ctx)

    def call_deployment(self, name: str, request: ChatRequest, ctx: CallContext) -> ChatResult:
        """One named deployment (the Compare page): same limits, circuit and ledger, no failover."""
        return self._serve(name, [self._deployment(name)], request, ctx)

    def stream(self, alias: str, request: ChatRequest, ctx: CallContext) -> Iterator[StreamEvent]:
        return self._stream(alias, self._ordered(alias, request), request, ctx)

    def stream_deployment(
        self, name: str, request: ChatRequest, ctx: CallContext
    ) -> Iterator[StreamEvent]:
        return self._stream(name, [self._deployment(name)], request, ctx)

    def statuses(self) -> list[DeploymentStatus]:
        out = []
        for name, dep in self.config.deployments.items():
            ready = readiness(dep)
            out.append(
                DeploymentStatus(
                    name,
                    dep.provider,
                    dep.model,
                    dep.tier,
                    ready.ready,
                    ready.reason,
                    self.state.circuit(name),
                    self.state.latency_ms(name),
                    dep.rpm,
                    dep.tpm,
                )
            )
        return out

    # --- selection ----------------------------------------------------------------------------

    def _deployment(self, name: str) -> tuple[str, DeploymentConfig]:
        dep = self.config.deployments.get(name)
        if dep is None:
            valid = ", ".join(sorted(self.config.deployments))
            raise BadRequest(f"Unknown deployment {name!r}. Configured: {valid}.")
        return name, dep

    def _ordered(self, alias: str, request: ChatRequest) -> list[tuple[str, DeploymentConfig]]:
        cfg = self.config.aliases.get(alias)
        if cfg is None:
            valid = ", ".join(sorted(self.config.aliases))
            raise BadRequest(f"Unknown model alias {alias!r}. Configured aliases: {valid}.")
        candidates = [(n, self.config.deployments[n]) for n in cfg.deployments]
        if cfg.strategy == "priority":
            return sorted(candidates, key=lambda c: c[1].priority)  # stable: list order breaks ties
        if cfg.strategy == "weighted":
            pool, ordered = list(candidates), []
            while pool:
                pick = self._rng.choices(range(len(pool)), [c[1].weight for c in pool])[0]
                ordered.append(pool.pop(pick))
            return ordered
        if cfg.strategy == "latency":
            # Unknown latency sorts first, so a new deployment gets measured once.
            return sorted(candidates, key=lambda c: self.state.latency_ms(c[0]) or 0.0)
        floor = TIER_RANK[cfg.required_tier or "small"]
        capable = [c for c in candidates if TIER_RANK[c[1].tier] >= floor]
        return sorted(capable, key=lambda c: self._unit_price(c[1]))

    def _unit_price(self, dep: DeploymentConfig) -> float:
        price = self._prices.price_at(dep.model)
        if price is None:
            return float("inf")  # unpriced deployments go last: their cost is unknown
        return float(price.input_per_mtok_micros + price.output_per_mtok_micros)

    # --- budgets and cache ----------------------------------------------------------------------

    def _check_budgets(self, name: str, ctx: CallContext) -> list[str]:
        """Budget keys to charge; raises `BudgetExceeded` (after recording it) when one is spent."""
        now = utcnow()
        start = month_start(now)
        subjects = {
            "team": ctx.team_name,
            "customer": str(ctx.customer_id) if ctx.customer_id is not None else None,
        }
        keys = []
        for budget in self._budgets():
            if subjects.get(budget.scope) != budget.subject:
                continue
            key = f"{budget.scope}:{budget.subject}:{start:%Y-%m}"
            spent = self.state.spend(key, partial(self._spend, budget.scope, budget.subject, start))
            if spent >= budget.limit_micros:
                self._record(ctx, name, None, status="budget_exceeded")
                raise BudgetExceeded(
                    f"The {budget.scope} {budget.subject!r} has spent {format_usd(spent)} of its "
                    f"{format_usd(budget.limit_micros)} budget for {start:%B %Y}; LLM traffic is "
                    "stopped until next month or until finance raises the budget."
                )
            keys.append(key)
        return keys

    def _cache_lookup(self, name: str, request: ChatRequest, ctx: CallContext) -> ChatResult | None:
        if not self._cacheable(request, ctx):
            return None
        started = time.perf_counter()
        key = response_cache.exact_key(name, request)
        hit_kind: Literal["exact", "semantic"] = "exact"
        cached = self.state.cache_get(key)
        if cached is None and self.config.cache.semantic and self._embed is not None:
            near = self._semantic.nearest(
                name,
                self._embed(request.cache_key_text()),
                self.config.cache.semantic_threshold,
            )
            cached = self.state.cache_get(near) if near else None
            hit_kind = "semantic"
        if cached is None:
            return None
        original = response_cache.decode_result(cached)
        result = replace(
            original,
            latency_ms=(time.perf_counter() - started) * 1000,
            cost_micros=0,
            cache_hit=hit_kind,
        )
        self._record(
            ctx,
            name,
            self.config.deployments.get(result.deployment),
            status="ok",
            result=result,
            request=request,
        )
        return result

    def _cacheable(self, request: ChatRequest, ctx: CallContext) -> bool:
        return ctx.use_cache and self.config.cache.exact_ttl_s > 0 and not request.attachments

    def _cache_store(
        self, name: str, request: ChatRequest, ctx: CallContext, result: ChatResult
    ) -> None:
        if not self._cacheable(request, ctx) or result.finish_reason == "error":
            return
        key = response_cache.exact_key(name, request)
        self.state.cache_set(
            key, response_cache.encode_result(result), self.config.cache.exact_ttl_s
        )
        if self.config.cache.semantic and self._embed is not None:
            self._semantic.add(name, self._embed(request.cache_key_text()), key)

    # --- serving --------------------------------------------------------------------------------

    def _serve(
        self,
        name: str,
        candidates: list[tuple[str, DeploymentConfig]],
        request: ChatRequest,
        ctx: CallContext,
    ) -> ChatResult:
        budget_keys = self._check_budgets(name, ctx)
        cached = self._cache_lookup(name, request, ctx)
        if cached is not None:
            return cached
        reasons: list[str] = []
        for dep_name, dep in self._usable(candidates, request, reasons):
            estimate = _estimate_tokens(request)
            if not self._admit(dep_name, dep, estimate, ctx, name, reasons):
                continue
            try:
                result = self._call_with_retries(name, dep_name, dep, request, ctx)
            except (BadRequest, ContentFiltered):
                raise  # the request itself is refused: another deployment would refuse it too
            except LLMError as exc:
                reasons.append(f"{dep_name}: {exc.message}")
                continue
            self._succeeded(name, dep_name, dep, request, ctx, result, estimate, budget_keys)
            return result
        raise self._exhausted(name, ctx, reasons)

    def _stream(
        self,
        name: str,
        candidates: list[tuple[str, DeploymentConfig]],
        request: ChatRequest,
        ctx: CallContext,
    ) -> Iterator[StreamEvent]:
        budget_keys = self._check_budgets(name, ctx)
        cached = self._cache_lookup(name, request, ctx)
        if cached is not None:
            yield StreamEvent(delta=cached.text)
            yield StreamEvent(result=cached)
            return
        reasons: list[str] = []
        for dep_name, dep in self._usable(candidates, request, reasons):
            estimate = _estimate_tokens(request)
            if not self._admit(dep_name, dep, estimate, ctx, name, reasons):
                continue
            sized = _for_deployment(request, dep)
            started, sent_any = time.perf_counter(), False
            try:
                for event in _invoke_stream(self.pool.get(dep), sized):
                    if event.result is not None:
                        result = self._finish(dep_name, dep, event.result)
                        self._succeeded(
                            name, dep_name, dep, request, ctx, result, estimate, budget_keys
                        )
                        yield StreamEvent(result=result)
                        return
                    sent_any = True
                    yield event
            except LLMError as exc:
                self._failed(name, dep_name, dep, ctx, exc, started)
                if sent_any or isinstance(exc, (BadRequest, ContentFiltered)):
                    raise  # part of the answer is on screen: failing over would mix two answers
                reasons.append(f"{dep_name}: {exc.message}")
                continue
        raise self._exhausted(name, ctx, reasons)

    def _usable(
        self,
        candidates: list[tuple[str, DeploymentConfig]],
        request: ChatRequest,
        reasons: list[str],
    ) -> Iterator[tuple[str, DeploymentConfig]]:
        needed = required_capabilities(request)
        for dep_name, dep in candidates:
            ready = readiness(dep)
            if not ready.ready:
                reasons.append(f"{dep_name}: {ready.reason}")
                continue
            missing = needed - capabilities(dep, self.pool)
            if missing:
                reasons.append(f"{dep_name}: cannot take {', '.join(sorted(missing))}")
                continue
            if not self.state.allow(dep_name):
                reasons.append(f"{dep_name}: circuit open (cooling down after failures)")
                continue
            yield dep_name, dep

    def _admit(
        self,
        dep_name: str,
        dep: DeploymentConfig,
        estimate: int,
        ctx: CallContext,
        name: str,
        reasons: list[str],
    ) -> bool:
        if self.state.acquire(dep_name, dep.rpm, dep.tpm, estimate):
            return True
        reasons.append(f"{dep_name}: over its requests/tokens per minute limit")
        self._record(ctx, name, dep, status=LimitExceeded.kind)
        return False

    def _call_with_retries(
        self,
        name: str,
        dep_name: str,
        dep: DeploymentConfig,
        request: ChatRequest,
        ctx: CallContext,
    ) -> ChatResult:
        sized = _for_deployment(request, dep)
        retry = self.config.retry
        for attempt in range(dep.max_retries + 1):
            started = time.perf_counter()
            try:
                return self._finish(dep_name, dep, _invoke(self.pool.get(dep), sized))
            except LLMError as exc:
                opened = self._failed(name, dep_name, dep, ctx, exc, started)
                last = attempt == dep.max_retries
                if not exc.retryable or opened or last:
                    raise
                if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
                    if exc.retry_after_s > retry.max_retry_after_s:
                        raise  # cooled down in _failed; the next deployment answers meanwhile
                    self._sleep(exc.retry_after_s)
                else:  # exponential backoff with full jitter
                    ceiling = min(retry.max_delay_s, retry.base_delay_s * 2**attempt)
                    self._sleep(self._rng.uniform(0, ceiling))
        raise AssertionError("unreachable")

    def _finish(self, dep_name: str, dep: DeploymentConfig, result: ChatResult) -> ChatResult:
        price = self._prices.price_at(dep.model)
        cost = price.cost_micros(result.input_tokens, result.output_tokens) if price else 0
        return replace(result, deployment=dep_name, provider=dep.provider, cost_micros=cost)

    def _succeeded(
        self,
        name: str,
        dep_name: str,
        dep: DeploymentConfig,
        request: ChatRequest,
        ctx: CallContext,
        result: ChatResult,
        estimate: int,
        budget_keys: list[str],
    ) -> None:
        self.state.record_success(dep_name, result.latency_ms)
        self.state.add_tokens(dep_name, result.input_tokens + result.output_tokens - estimate)
        for key in budget_keys:
            self.state.add_spend(key, result.cost_micros)
        self._record(ctx, name, dep, status="ok", result=result, request=request)
        self._cache_store(name, request, ctx, result)

    def _failed(
        self,
        name: str,
        dep_name: str,
        dep: DeploymentConfig,
        ctx: CallContext,
        exc: LLMError,
        started: float,
    ) -> bool:
        """Record a failed attempt; returns True when the deployment's circuit is now open."""
        latency = (time.perf_counter() - started) * 1000
        self._record(ctx, name, dep, status=exc.kind, latency_ms=latency, deployment=dep_name)
        circuit = self.config.circuit
        if isinstance(exc, RateLimited):
            self.state.cool_down(dep_name, exc.retry_after_s or circuit.cooldown_s)
            return (
                exc.retry_after_s is not None
                and exc.retry_after_s > self.config.retry.max_retry_after_s
            )
        if exc.kind in _UNHEALTHY:
            return self.state.record_failure(
                dep_name, circuit.failure_threshold, circuit.window_s, circuit.cooldown_s
            )
        return False

    def _exhausted(self, name: str, ctx: CallContext, reasons: list[str]) -> LLMError:
        self._record(ctx, name, None, status=NoDeploymentAvailable.kind)
        if reasons and all("cannot take" in r for r in reasons):
            return UnsupportedCapability(
                f"No deployment behind {name!r} can take this input: " + "; ".join(reasons)
            )
        detail = "; ".join(reasons) or "no deployments configured"
        return NoDeploymentAvailable(f"No deployment behind {name!r} could answer: {detail}.")

    def _record(
        self,
        ctx: CallContext,
        name: str,
        dep: DeploymentConfig | None,
        *,
        status: str,
        result: ChatResult | None = None,
        request: ChatRequest | None = None,
        latency_ms: float = 0.0,
        deployment: str | None = None,
    ) -> None:
        bodies = self.config.store_bodies and result is not None and request is not None
        self._ledger.record(
            UsageRecord(
                request_id=ctx.request_id,
                actor=ctx.actor.username,
                team=ctx.team_name,
                customer_id=ctx.customer_id,
                end_user=ctx.end_user,
                alias=name,
                deployment=(result.deployment if result else deployment)
                or (
                    next((n for n, d in self.config.deployments.items() if d is dep), "-")
                    if dep
                    else "-"
                ),
                provider=dep.provider if dep else "-",
                model=dep.model if dep else "-",
                status=status,
                input_tokens=result.input_tokens if result else 0,
                output_tokens=result.output_tokens if result else 0,
                cost_micros=result.cost_micros if result else 0,
                latency_ms=result.latency_ms if result else latency_ms,
                cache_hit=result.cache_hit if result else "",
                prompt_redacted=redact(request.cache_key_text()) if bodies and request else None,
                response_redacted=redact(result.text) if bodies and result else None,
            )
        )
