"""Demo LLM traffic: 30 days of product traffic from the paying customers plus internal teams'
use, priced with the price table, with the occasional rate limit and failover."""

from __future__ import annotations

import math
import random
import uuid
from datetime import timedelta

from sqlalchemy import insert, select

from core.demo.registry import SeedContext, seeder
from core.llm.models import LLMPrice, LLMUsage
from core.orgs.models import Organisation

DAYS = 30
# deployment -> (provider, model, share of traffic, median latency ms)
MIX = {
    "openai-gpt-4o-mini": ("openai", "gpt-4o-mini", 0.55, 650),
    "anthropic-claude-haiku": ("anthropic", "claude-haiku-4-5", 0.25, 800),
    "openai-gpt-4o": ("openai", "gpt-4o", 0.10, 1400),
    "anthropic-claude-sonnet": ("anthropic", "claude-sonnet-4-5", 0.05, 1900),
    "local-smollm2": ("local", "SmolLM2-135M-Instruct", 0.05, 2500),
}
CALLS_PER_DAY = {"starter": 0.2, "pro": 1.2, "enterprise": 8}
INTERNAL_TEAMS = {"ml_engineer": 60, "compliance_officer": 15}  # calls per day


@seeder("llm_usage", order=30)
def seed_llm_usage(ctx: SeedContext) -> str:
    rng, session = ctx.rng, ctx.session
    prices = {p.model: p for p in session.scalars(select(LLMPrice))}
    orgs = session.execute(
        select(Organisation.id, Organisation.plan, Organisation.signed_up_at).where(
            Organisation.plan != "free"
        )
    ).all()
    names = list(MIX)
    weights = [MIX[n][2] for n in names]
    rows: list[dict[str, object]] = []

    def call(day_start, actor: str, team: str, customer: int | None) -> None:  # type: ignore[no-untyped-def]
        dep = rng.choices(names, weights)[0]
        provider, model, _, median = MIX[dep]
        ts = day_start + timedelta(seconds=rng.randrange(86_400))
        request_id = uuid.UUID(int=rng.getrandbits(128)).hex
        alias = "chat-large" if dep in ("openai-gpt-4o", "anthropic-claude-sonnet") else "chat"
        base = {
            "request_id": request_id,
            "actor": actor,
            "team": team,
            "customer_id": customer,
            "alias": alias,
            "cache_hit": "",
        }
        if rng.random() < 0.02:  # a transient failure on the primary, answered by the fallback
            rows.append(
                {
                    **base,
                    "ts": ts,
                    "deployment": dep,
                    "provider": provider,
                    "model": model,
                    "status": rng.choice(["rate_limited", "unavailable", "timeout"]),
                    "latency_ms": rng.uniform(50, 3000),
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "cost_micros": 0,
                    "price_id": None,
                }
            )
            dep = "anthropic-claude-haiku" if provider == "openai" else "openai-gpt-4o-mini"
            provider, model, _, median = MIX[dep]
            ts += timedelta(seconds=1)
        tokens_in = max(20, int(math.exp(rng.gauss(6.3, 0.9))))
        tokens_out = max(5, int(math.exp(rng.gauss(5.2, 0.7))))
        price = prices.get(model)
        cost = (
            0
            if price is None
            else (
                tokens_in * price.input_per_mtok_micros
                + tokens_out * price.output_per_mtok_micros
                + 500_000
            )
            // 1_000_000
        )
        cached = rng.random() < 0.04
        rows.append(
            {
                **base,
                "ts": ts,
                "deployment": dep,
                "provider": provider,
                "model": model,
                "status": "ok",
                "latency_ms": 2.0 if cached else median * math.exp(rng.gauss(0, 0.35)),
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "cost_micros": 0 if cached else cost,
                "cache_hit": "exact" if cached else "",
                "price_id": None if cached or price is None else price.id,
            }
        )

    for day in range(DAYS, 0, -1):
        day_start = ctx.anchor - timedelta(days=day)
        for org_id, plan, signed_up in orgs:
            if signed_up > day_start:
                continue
            mean = CALLS_PER_DAY.get(plan, 0) * (1 + 0.02 * (DAYS - day))  # usage grows
            for _ in range(_poisson(rng, mean)):
                call(day_start, "service:product-api", "product", org_id)
        for team, per_day in INTERNAL_TEAMS.items():
            for _ in range(_poisson(rng, per_day)):
                call(day_start, f"demo-{team.split('_')[0]}", team, None)
    for start in range(0, len(rows), 20_000):
        session.execute(insert(LLMUsage), rows[start : start + 20_000])
    return f"{len(rows):,} ledger rows over {DAYS} days"


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method for small means, a rounded normal for large ones."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
