"""The knowledge base's question log as a data source: questions staff asked about a person, the
answers, the passages shown and rating comments that mention the subject.

Erasure rewrites each mention (e-mail, full name) to "[erased subject]" in place; the rows stay,
as they are the log of what the console answered (and feed answer-quality review)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.privacy.models import DataSubject
from core.privacy.sources import (
    ErasureOutcome,
    mention_patterns,
    register_source,
    row_dict,
    scrub_mentions,
)
from core.rag.models import QueryLog
from core.rag.privacy_source import like_any, needles

TEXT_FIELDS = ("question", "answer", "passages", "rating_comment")
COLUMNS = ("ts", "actor", "collection_id", "question", "answer", "status", "rating")
REASON = (
    "Mentions of the subject were replaced in the questions, answers, passages shown and rating "
    "comments; the log rows stay as the record of what the console answered."
)


def matching_questions(session: Session, subject: DataSubject) -> list[QueryLog]:
    patterns, words = mention_patterns(subject), needles(subject)
    if not patterns or not words:
        return []
    conditions = [cond for f in TEXT_FIELDS for cond in like_any(getattr(QueryLog, f), words)]
    rows = session.scalars(select(QueryLog).where(or_(*conditions)).order_by(QueryLog.id))
    return [
        row
        for row in rows
        if any(p.search(getattr(row, f) or "") for p in patterns for f in TEXT_FIELDS)
    ]


@register_source(order=65)
class QuestionLogSource:
    name = "kb_questions"
    label = "Knowledge-base question log"
    description = "Questions asked in the console, and their answers, that mention the subject."

    def collect(self, session: Session, subject: DataSubject) -> list[dict[str, Any]]:
        return [row_dict(r, COLUMNS) for r in matching_questions(session, subject)]

    def erase(self, session: Session, subject: DataSubject) -> ErasureOutcome:
        rows = matching_questions(session, subject)
        if not rows:
            return ErasureOutcome("none", 0, "No logged question or answer mentions the subject.")
        for row in rows:
            for field in TEXT_FIELDS:
                value = getattr(row, field)
                if value:
                    setattr(row, field, scrub_mentions(value, subject)[0])
        session.flush()
        return ErasureOutcome("anonymised", len(rows), REASON)
