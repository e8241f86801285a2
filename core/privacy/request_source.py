"""The subject's own data-subject requests: handed over on access, kept on erasure.

The controller must be able to show how it handled each request (accountability, GDPR Art.
5(2); CCPA record-keeping, 11 CCR §7101: 24 months). The records are kept, but the subject's
e-mail and name are replaced in their free-text details.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.privacy.models import DataRequest, DataSubject
from core.privacy.sources import ErasureOutcome, register_source, row_dict, scrub_mentions

COLUMNS = (
    "reference",
    "kind",
    "regime",
    "status",
    "channel",
    "details",
    "received_at",
    "due_at",
    "extended",
    "extension_reason",
    "verified_at",
    "verification_method",
    "closed_at",
    "resolution",
)
REASON = (
    "Accountability (GDPR Art. 5(2); CCPA 11 CCR §7101): the record of each request and how it "
    "was answered is kept; the subject's e-mail and name were removed from its free text."
)


@register_source(order=20)
class RequestSource:
    name = "requests"
    label = "Data-subject requests"
    description = "The subject's requests (access, erasure, ...) and how each was handled."

    def collect(self, session: Session, subject: DataSubject) -> list[dict[str, Any]]:
        requests = session.scalars(
            select(DataRequest)
            .where(DataRequest.subject_id == subject.id)
            .order_by(DataRequest.received_at, DataRequest.id)
        )
        return [row_dict(r, COLUMNS) for r in requests]

    def erase(self, session: Session, subject: DataSubject) -> ErasureOutcome:
        requests = list(
            session.scalars(select(DataRequest).where(DataRequest.subject_id == subject.id))
        )
        for request in requests:
            request.details, _ = scrub_mentions(request.details, subject)
            request.resolution, _ = scrub_mentions(request.resolution, subject)
            request.extension_reason, _ = scrub_mentions(request.extension_reason, subject)
        session.flush()
        return ErasureOutcome("retained", len(requests), REASON)
