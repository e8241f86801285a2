"""The LLM usage ledger as a data source: the calls made on behalf of the subject.

A subject's rows are those of their organisation (`customer_id`) carrying their customer
reference as `end_user`. Erasure anonymises them: the link to the person (`end_user`) and the
stored prompt and response bodies are removed, while the cost rows stay, because the customer's
invoices and spend reports are computed from them (accounting records must be kept).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.errors import DatabaseUnavailable
from core.llm.ledger import LEDGER
from core.llm.models import LLMUsage
from core.privacy.models import DataSubject
from core.privacy.sources import ErasureOutcome, register_source, row_dict

COLUMNS = (
    "ts",
    "request_id",
    "customer_id",
    "end_user",
    "alias",
    "deployment",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_micros",
    "latency_ms",
    "status",
    "cache_hit",
    "prompt_redacted",
    "response_redacted",
)
REASON = (
    "The link to the person (end_user) and the stored prompt and response bodies were removed; "
    "the cost rows (tokens, model, price) are kept because the customer's billing and "
    "accounting records are computed from them."
)


def _of(subject: DataSubject) -> ColumnElement[bool]:
    org = (
        LLMUsage.customer_id.is_(None)
        if subject.organisation_id is None
        else LLMUsage.customer_id == subject.organisation_id
    )
    return org & (LLMUsage.end_user == subject.external_ref)


@register_source(order=40)
class LLMUsageSource:
    name = "llm_usage"
    label = "LLM usage ledger"
    description = "Model calls made for the subject: time, model, tokens, cost, stored bodies."

    def prepare(self, subject_id: int, erasing: bool) -> None:
        # rows still queued in the writer thread would escape both export and erasure
        LEDGER.flush(5.0)
        if LEDGER.backlog():
            raise DatabaseUnavailable(
                f"{LEDGER.backlog():,} LLM usage rows are still waiting to be written to the "
                "database; try again in a minute so none of the subject's calls is missed."
            )

    def collect(self, session: Session, subject: DataSubject) -> list[dict[str, Any]]:
        rows = session.scalars(select(LLMUsage).where(_of(subject)).order_by(LLMUsage.id))
        return [row_dict(r, COLUMNS) for r in rows]

    def erase(self, session: Session, subject: DataSubject) -> ErasureOutcome:
        result = session.execute(
            update(LLMUsage)
            .where(_of(subject))
            .values(end_user=None, prompt_redacted=None, response_redacted=None)
            .execution_options(synchronize_session=False)
        )
        rows = int(getattr(result, "rowcount", 0) or 0)
        if not rows:
            return ErasureOutcome("none", 0, "No LLM calls were recorded for the subject.")
        return ErasureOutcome("anonymised", rows, REASON)
