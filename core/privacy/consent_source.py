"""Consent events of the subject: handed over on access, kept on erasure.

Proof that consent was given (and when it was withdrawn) is what the controller must be able
to show (GDPR Art. 7(1)); once the profile is a tombstone these rows no longer identify anyone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.privacy.models import ConsentEvent, ConsentPurpose, DataSubject
from core.privacy.sources import ErasureOutcome, register_source, row_dict

COLUMNS = ("id", "kind", "ts", "channel", "notice_version", "proof_ref", "recorded_by", "note")
REASON = (
    "GDPR Art. 7(1): proof of consent and of its withdrawal is kept; the events hold no direct "
    "identifiers once the profile is anonymised (their free text is refused when it holds an "
    "e-mail address)."
)


@register_source(order=10)
class ConsentSource:
    name = "consent"
    label = "Consent history"
    description = "Every consent given, withdrawn or expired, per purpose, with its proof."

    def collect(self, session: Session, subject: DataSubject) -> list[dict[str, Any]]:
        rows = session.execute(
            select(ConsentEvent, ConsentPurpose.key, ConsentPurpose.name)
            .join(ConsentPurpose, ConsentPurpose.id == ConsentEvent.purpose_id)
            .where(ConsentEvent.subject_id == subject.id)
            .order_by(ConsentEvent.ts, ConsentEvent.id)
        )
        return [
            {"purpose": key, "purpose_name": name, **row_dict(event, COLUMNS)}
            for event, key, name in rows
        ]

    def erase(self, session: Session, subject: DataSubject) -> ErasureOutcome:
        count = session.scalar(
            select(func.count())
            .select_from(ConsentEvent)
            .where(ConsentEvent.subject_id == subject.id)
        )
        rows = int(count or 0)
        return ErasureOutcome("retained" if rows else "none", rows, REASON if rows else "")
