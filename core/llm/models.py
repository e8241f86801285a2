"""LLM gateway tables: usage ledger, versioned prices, budgets, router configs, compare runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigId = BigInteger().with_variant(Integer, "sqlite")


class LLMUsage(Base):
    """One row per provider attempt, cache hit or refusal. `request_id` groups a request's rows,
    so failovers show as several rows of one request."""

    __tablename__ = "llm_usage"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    request_id: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    # the customer's own id for the person behind the call (OpenAI's `user`); data-subject
    # requests find and erase a person's rows by it
    end_user: Mapped[str | None] = mapped_column(String(128), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    deployment: Mapped[str] = mapped_column(String(64), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)  # micro-USD
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(32))  # "ok" or an LLMError kind
    cache_hit: Mapped[str] = mapped_column(String(8), default="")
    price_id: Mapped[int | None] = mapped_column(ForeignKey("llm_prices.id", ondelete="SET NULL"))
    prompt_redacted: Mapped[str | None] = mapped_column(Text)
    response_redacted: Mapped[str | None] = mapped_column(Text)


class LLMPrice(Base):
    """Price per million tokens from `effective_from` on. Rows are never edited: a change is a new
    row, so every ledger row keeps the price it was charged at."""

    __tablename__ = "llm_prices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128), index=True)
    input_per_mtok_micros: Mapped[int] = mapped_column(BigInteger)
    output_per_mtok_micros: Mapped[int] = mapped_column(BigInteger)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    note: Mapped[str] = mapped_column(String(200), default="")


class LLMBudget(Base):
    """A monthly spending limit for a team or a customer; traffic stops when it is spent."""

    __tablename__ = "llm_budgets"
    __table_args__ = (UniqueConstraint("scope", "subject", name="uq_llm_budgets_scope_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # "team" or "customer"
    subject: Mapped[str] = mapped_column(String(64))  # team name, or organisation id
    limit_micros: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RouterConfigVersion(Base):
    """Every saved router configuration; the newest is active. Kept for history and rollback."""

    __tablename__ = "llm_router_configs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    yaml_text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    comment: Mapped[str] = mapped_column(String(200), default="")


class CompareRun(Base):
    __tablename__ = "llm_compare_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    prompt: Mapped[str] = mapped_column(Text)
    max_tokens: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str | None] = mapped_column(Text)
    judge: Mapped[str | None] = mapped_column(String(64))
    attachment: Mapped[str | None] = mapped_column(String(200))  # file name and type, not bytes


class CompareResult(Base):
    __tablename__ = "llm_compare_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("llm_compare_runs.id", ondelete="CASCADE"), index=True
    )
    deployment: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128))
    temperature: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text, default="")
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    finish_reason: Mapped[str] = mapped_column(String(16), default="")
    error: Mapped[str | None] = mapped_column(Text)
    judge_score: Mapped[float | None] = mapped_column(Float)
    reference_score: Mapped[float | None] = mapped_column(Float)
