"""The gateway every caller uses: permission check, then the process's router.

The router is built from the newest saved configuration, with state in-process or in Redis
(`OMNI_REDIS_URL`). Saving a configuration rebuilds it; circuit and limit state carries over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
from sqlalchemy import select

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.config import get_settings
from core.db import unit_of_work
from core.llm.config import RouterConfig, default_config_text, parse_config
from core.llm.deployments import capabilities, readiness
from core.llm.models import RouterConfigVersion
from core.llm.router import BudgetLoader, CallContext, DeploymentStatus, Router
from core.llm.state import InProcessState, RedisState, RouterState
from core.llm.types import Capability, ChatRequest, ChatResult, StreamEvent
from core.text import clean_text

_lock = threading.Lock()
_router: Router | None = None
_state: RouterState | None = None


def _make_state() -> RouterState:
    url = get_settings().redis_url
    return RedisState(url) if url else InProcessState()


def active_config_text() -> str:
    with unit_of_work(read_only=True) as session:
        newest = session.scalar(select(RouterConfigVersion).order_by(RouterConfigVersion.id.desc()))
    return newest.yaml_text if newest else default_config_text()


def _semantic_embed() -> Callable[[str], np.ndarray]:
    from core.embeddings.minilm import shared_embedder

    return lambda text: shared_embedder().embed([text])[0]


def get_router() -> Router:
    global _router, _state
    with _lock:
        if _router is None:
            from core.llm.budgets import load_budgets, spend_for

            _state = _state or _make_state()
            config = parse_config(active_config_text())
            _router = Router(
                config,
                _state,
                budgets=_cached_budgets(load_budgets),
                spend=spend_for,
                embed=_semantic_embed() if config.cache.semantic else None,
            )
        return _router


def _cached_budgets(load: BudgetLoader) -> BudgetLoader:
    """Budgets change rarely: read them once per router build (saving one rebuilds the router)."""
    budgets = load()
    return lambda: budgets


def reload_router(*, keep_state: bool = True) -> None:
    global _router, _state
    with _lock:
        _router = None
        if not keep_state:
            _state = None


def _context(
    actor: Actor,
    team: str | None,
    customer_id: int | None,
    use_cache: bool,
    end_user: str | None = None,
) -> CallContext:
    return CallContext(
        actor=actor,
        team=clean_text(team or "", 64),
        customer_id=customer_id,
        use_cache=use_cache,
        end_user=clean_text(end_user, 128) or None if end_user else None,
    )


def chat(
    actor: Actor,
    alias: str,
    request: ChatRequest,
    *,
    team: str | None = None,
    customer_id: int | None = None,
    use_cache: bool = True,
    end_user: str | None = None,
) -> ChatResult:
    require(actor, Permission.LLM_USE, action="llm.chat", target=alias)
    context = _context(actor, team, customer_id, use_cache, end_user)
    return get_router().chat(alias, request, context)


def stream(
    actor: Actor,
    alias: str,
    request: ChatRequest,
    *,
    team: str | None = None,
    customer_id: int | None = None,
    use_cache: bool = True,
    end_user: str | None = None,
) -> Iterator[StreamEvent]:
    require(actor, Permission.LLM_USE, action="llm.chat", target=alias)
    context = _context(actor, team, customer_id, use_cache, end_user)
    return get_router().stream(alias, request, context)


def stream_deployment(
    actor: Actor, deployment: str, request: ChatRequest, *, use_cache: bool = False
) -> Iterator[StreamEvent]:
    require(actor, Permission.LLM_USE, action="llm.chat", target=deployment)
    return get_router().stream_deployment(
        deployment, request, _context(actor, None, None, use_cache)
    )


def call_deployment(actor: Actor, deployment: str, request: ChatRequest) -> ChatResult:
    require(actor, Permission.LLM_USE, action="llm.chat", target=deployment)
    return get_router().call_deployment(deployment, request, _context(actor, None, None, False))


def deployment_statuses(actor: Actor) -> list[DeploymentStatus]:
    require(actor, Permission.LLM_ROUTER_READ, action="llm.router.status")
    return get_router().statuses()


def router_config(actor: Actor) -> tuple[RouterConfig, str]:
    require(actor, Permission.LLM_ROUTER_READ, action="llm.router.config")
    text = active_config_text()
    return parse_config(text), text


def save_router_config(actor: Actor, yaml_text: str, comment: str = "") -> RouterConfig:
    """Validate and store a new version; it becomes active at once in this process."""
    require(actor, Permission.LLM_ROUTER_MANAGE, action="llm.router.save")
    config = parse_config(yaml_text)
    previous = parse_config(active_config_text())
    with unit_of_work() as session:
        session.add(
            RouterConfigVersion(
                yaml_text=yaml_text, created_by=actor.username, comment=clean_text(comment, 200)
            )
        )
        record(
            session,
            actor,
            "llm.router.save",
            "router",
            {
                "comment": clean_text(comment, 200),
                "deployments_added": sorted(set(config.deployments) - set(previous.deployments)),
                "deployments_removed": sorted(set(previous.deployments) - set(config.deployments)),
                "aliases_added": sorted(set(config.aliases) - set(previous.aliases)),
                "aliases_removed": sorted(set(previous.aliases) - set(config.aliases)),
            },
        )
    reload_router(keep_state=True)
    return config


def config_history(actor: Actor) -> list[RouterConfigVersion]:
    require(actor, Permission.LLM_ROUTER_READ, action="llm.router.history")
    with unit_of_work(read_only=True) as session:
        stmt = select(RouterConfigVersion).order_by(RouterConfigVersion.id.desc()).limit(50)
        return list(session.scalars(stmt))


def reset_circuits(actor: Actor) -> None:
    require(actor, Permission.LLM_ROUTER_MANAGE, action="llm.router.reset")
    get_router().state.reset()
    with unit_of_work() as session:
        record(session, actor, "llm.router.reset", "router", {})


def deployment_capabilities(actor: Actor) -> dict[str, tuple[bool, str, frozenset[Capability]]]:
    """Per deployment: ready?, why not, and what it can take (text, vision, audio...)."""
    require(actor, Permission.LLM_USE, action="llm.router.capabilities")
    router = get_router()
    out: dict[str, tuple[bool, str, frozenset[Capability]]] = {}
    for name, dep in router.config.deployments.items():
        ready = readiness(dep)
        if not ready.ready:  # no adapter is built for a deployment that cannot be called
            out[name] = (False, ready.reason, frozenset())
            continue
        try:
            caps = capabilities(dep, router.pool)
        except Exception as exc:  # an adapter that cannot even be built is not ready
            out[name] = (False, f"cannot start: {exc}"[:200], frozenset())
            continue
        out[name] = (ready.ready, ready.reason, caps)
    return out
