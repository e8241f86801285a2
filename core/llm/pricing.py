"""Versioned prices per million tokens, and the cost of a call at the time it was made."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import ValidationError
from core.llm.models import LLMPrice
from core.money import parse_usd_to_micros
from core.text import clean_text

MAX_PRICE_USD_PER_MTOK = Decimal(1000)


@dataclass(frozen=True)
class Price:
    id: int
    provider: str
    model: str
    input_per_mtok_micros: int
    output_per_mtok_micros: int
    effective_from: datetime
    created_by: str
    note: str

    def cost_micros(self, input_tokens: int, output_tokens: int) -> int:
        """Rounded half up to whole micro-USD."""
        total = (
            input_tokens * self.input_per_mtok_micros + output_tokens * self.output_per_mtok_micros
        )
        return (total + 500_000) // 1_000_000


def _view(row: LLMPrice) -> Price:
    return Price(
        row.id,
        row.provider,
        row.model,
        row.input_per_mtok_micros,
        row.output_per_mtok_micros,
        row.effective_from,
        row.created_by,
        row.note,
    )


class PriceBook:
    """All prices in memory (the table is small), refreshed every `ttl_s` or when invalidated."""

    def __init__(self, ttl_s: float = 60.0) -> None:
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._by_model: dict[str, list[Price]] = {}

    def invalidate(self) -> None:
        self._loaded_at = 0.0

    def _refresh(self) -> None:
        with unit_of_work(read_only=True) as session:
            rows = [
                _view(r)
                for r in session.scalars(select(LLMPrice).order_by(LLMPrice.effective_from))
            ]
        by_model: dict[str, list[Price]] = {}
        for price in rows:
            by_model.setdefault(price.model, []).append(price)
        self._by_model, self._loaded_at = by_model, time.monotonic()

    def price_at(self, model: str, at: datetime | None = None) -> Price | None:
        with self._lock:
            if time.monotonic() - self._loaded_at > self._ttl:
                self._refresh()
            history = self._by_model.get(model, [])
        at = at or utcnow()
        current = None
        for price in history:  # ascending by effective_from
            if price.effective_from <= at:
                current = price
        return current


PRICE_BOOK = PriceBook()


def list_prices(actor: Actor) -> list[Price]:
    require(actor, Permission.LLM_SPEND_READ, action="llm.prices.list")
    with unit_of_work(read_only=True) as session:
        stmt = select(LLMPrice).order_by(LLMPrice.model, LLMPrice.effective_from.desc())
        return [_view(r) for r in session.scalars(stmt)]


def set_price(
    actor: Actor,
    provider: str,
    model: str,
    input_usd_per_mtok: str | Decimal,
    output_usd_per_mtok: str | Decimal,
    *,
    effective_from: datetime | None = None,
    note: str = "",
) -> Price:
    """Add a price from `effective_from` (default now). Earlier calls keep their old price."""
    model = clean_text(model, 128)
    provider = clean_text(provider, 32)
    require(actor, Permission.LLM_PRICES_MANAGE, action="llm.prices.set", target=model)
    if not model or not provider:
        raise ValidationError("Give the provider and the model name.")
    in_micros = parse_usd_to_micros(
        input_usd_per_mtok, field="Input price", maximum=MAX_PRICE_USD_PER_MTOK
    )
    out_micros = parse_usd_to_micros(
        output_usd_per_mtok, field="Output price", maximum=MAX_PRICE_USD_PER_MTOK
    )
    start = effective_from or utcnow()
    if start.tzinfo is None:
        raise ValidationError("The effective date needs a time zone.")
    with unit_of_work() as session:
        row = LLMPrice(
            provider=provider,
            model=model,
            input_per_mtok_micros=in_micros,
            output_per_mtok_micros=out_micros,
            effective_from=start,
            created_by=actor.username,
            note=clean_text(note, 200),
        )
        session.add(row)
        session.flush()
        record(
            session,
            actor,
            "llm.prices.set",
            model,
            {
                "provider": provider,
                "input_per_mtok_micros": in_micros,
                "output_per_mtok_micros": out_micros,
                "effective_from": start.isoformat(),
            },
        )
        price = _view(row)
    PRICE_BOOK.invalidate()
    return price
