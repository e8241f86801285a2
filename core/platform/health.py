"""Which backend serves each concern of the design table, and whether it answers.

Checks are cheap and side-effect free: a `SELECT 1`, a Redis PING, an import probe. Backends that a
later issue brings (MLflow, LLM providers, Stripe, Ray) report what is configured and whether their
library is importable, never a made-up green light.
"""

from __future__ import annotations

import importlib.util
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from sqlalchemy import text

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.config import Settings, get_settings, mask_url
from core.db import get_engine


@dataclass(frozen=True)
class BackendStatus:
    concern: str
    backend: str  # what is active, e.g. "SQLite (WAL)" or "PostgreSQL"
    detail: str
    state: str  # "ok", "degraded", "down", "off" (not configured, by choice)
    latency_ms: float | None = None


def _timed(fn: Callable[[], str]) -> tuple[str, float]:
    started = time.perf_counter()
    detail = fn()
    return detail, (time.perf_counter() - started) * 1000


def check_database(settings: Settings) -> BackendStatus:
    from core.schema import current_revision, head_revision

    url = settings.effective_database_url
    engine = get_engine(url)
    name = "SQLite (WAL)" if engine.dialect.name == "sqlite" else "PostgreSQL"
    try:

        def ping() -> str:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return mask_url(url)

        detail, ms = _timed(ping)
        current, head = current_revision(url), head_revision()
    except Exception as exc:  # any driver error means the store is unreachable
        return BackendStatus("Relational store", name, f"unreachable: {type(exc).__name__}", "down")
    if current != head:
        return BackendStatus(
            "Relational store",
            name,
            f"schema at {current}, code expects {head}: run `omni db upgrade`",
            "degraded",
            ms,
        )
    return BackendStatus("Relational store", name, f"{detail} (schema {current})", "ok", ms)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _tcp_probe(url: str, default_port: int) -> tuple[bool, float]:
    parsed = urlparse(url)
    started = time.perf_counter()
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1.5
        ):
            return True, (time.perf_counter() - started) * 1000
    except OSError:
        return False, (time.perf_counter() - started) * 1000


def check_cache(settings: Settings) -> BackendStatus:
    if not settings.redis_url:
        return BackendStatus(
            "Cache, rate limits, router state",
            "in-process",
            "single replica; set OMNI_REDIS_URL to share state",
            "ok",
        )
    reachable, ms = _tcp_probe(settings.redis_url, 6379)
    return BackendStatus(
        "Cache, rate limits, router state",
        "Redis",
        mask_url(settings.redis_url),
        "ok" if reachable else "down",
        ms,
    )


def check_mlflow(settings: Settings) -> BackendStatus:
    uri = settings.effective_mlflow_uri
    backend = "MLflow (local SQLite)" if uri.startswith("sqlite") else "MLflow tracking server"
    if not _installed("mlflow"):
        return BackendStatus(
            "Model registry", backend, f"{mask_url(uri)}; mlflow is not installed", "down"
        )
    if uri.startswith(("http://", "https://")):
        reachable, ms = _tcp_probe(uri, 443 if uri.startswith("https") else 80)
        return BackendStatus(
            "Model registry", backend, mask_url(uri), "ok" if reachable else "down", ms
        )
    return BackendStatus("Model registry", backend, mask_url(uri), "ok")


def check_llm(settings: Settings) -> BackendStatus:
    """Which router deployments can be called now (keys present, enabled, circuit closed)."""
    from core.llm.deployments import readiness
    from core.llm.gateway import get_router

    router = get_router()
    ready, waiting = [], []
    for name, dep in router.config.deployments.items():
        state = router.state.circuit(name).state
        if readiness(dep).ready and state != "open":
            ready.append(name)
        else:
            waiting.append(name)
    local_ready = _installed("transformers") and _installed("gguf")
    detail = f"{len(ready)} of {len(ready) + len(waiting)} deployments callable: {', '.join(ready)}"
    if not local_ready:
        detail += "; local model runtime (transformers, gguf) not installed"
    state = "ok" if ready and local_ready else ("degraded" if ready else "down")
    return BackendStatus(
        "LLM providers", f"router (default {settings.llm_default_provider})", detail, state
    )


def check_stripe(settings: Settings) -> BackendStatus:
    if not settings.stripe_api_key:
        return BackendStatus(
            "Payments",
            "local ledger",
            "Stripe sync is off: set OMNI_STRIPE_API_KEY to turn it on",
            "off",
        )
    mode = (
        "test"
        if settings.stripe_api_key.get_secret_value().startswith(("sk_test", "rk_test"))
        else "live"
    )
    ready = _installed("stripe")
    return BackendStatus(
        "Payments",
        f"Stripe ({mode} mode)",
        "key configured" if ready else "key configured; stripe SDK not installed",
        "ok" if ready else "down",
    )


def check_executor(settings: Settings) -> BackendStatus:
    if settings.executor == "local":
        return BackendStatus(
            "Jobs", "local executor", "a subprocess per run, in-app scheduler", "ok"
        )
    address = settings.ray_address or "auto"
    if not _installed("ray"):
        return BackendStatus("Jobs", "Ray", f"{address}; ray is not installed", "down")
    return BackendStatus("Jobs", "Ray", mask_url(address), "ok")


CHECKS: list[Callable[[Settings], BackendStatus]] = [
    check_database,
    check_cache,
    check_mlflow,
    check_llm,
    check_stripe,
    check_executor,
]


def platform_status(actor: Actor) -> list[BackendStatus]:
    require(actor, Permission.PLATFORM_READ, action="platform.status")
    settings = get_settings()
    results = []
    for check in CHECKS:
        try:
            results.append(check(settings))
        except Exception as exc:  # a broken check must not hide the others
            results.append(
                BackendStatus(
                    check.__name__.removeprefix("check_"),
                    "?",
                    f"check failed: {type(exc).__name__}: {exc}"[:300],
                    "down",
                )
            )
    return results
