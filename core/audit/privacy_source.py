"""The audit log as a data source: entries about the subject are listed on access and kept on
erasure. By design an entry holds ids and counts, never personal data, and the log is
append-only and hash-chained (changing a row would break `omni audit verify`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.models import AuditEntry
from core.privacy.models import DataRequest, DataSubject
from core.privacy.sources import ErasureOutcome, register_source, row_dict

COLUMNS = ("seq", "ts", "actor", "actor_role", "action", "target", "outcome", "summary")
REASON = (
    "Audit entries hold ids and counts, not personal data, and the log is append-only and "
    "hash-chained: kept as the record of processing (accountability, GDPR Art. 5(2))."
)


def _targets(session: Session, subject: DataSubject) -> list[str]:
    references = session.scalars(
        select(DataRequest.reference).where(DataRequest.subject_id == subject.id)
    )
    return [f"subject:{subject.id}", *references]


@register_source(order=30)
class AuditSource:
    name = "audit_log"
    label = "Audit log"
    description = "Entries of the audit log about the subject and their requests."

    def collect(self, session: Session, subject: DataSubject) -> list[dict[str, Any]]:
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target.in_(_targets(session, subject)))
            .order_by(AuditEntry.seq)
        )
        return [row_dict(e, COLUMNS) for e in entries]

    def erase(self, session: Session, subject: DataSubject) -> ErasureOutcome:
        count = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.target.in_(_targets(session, subject)))
        )
        rows = int(count or 0)
        return ErasureOutcome("retained", rows, REASON)
