"""The subject's own profile row: exported as is, erased into a pseudonymous tombstone.

The row is not deleted: consent events and request records point at it (and are kept, see their
sources), so it stays with every identifying field replaced. The new reference is a hash of the
old one with the subject's id, so the customer can still recognise an erased person if they
re-import them, but nobody can read the old reference back. This source runs LAST: the others
find the subject's data by the e-mail, name and reference this one removes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session

from core.clock import utcnow
from core.privacy.models import DataSubject
from core.privacy.sources import LAST, ErasureOutcome, register_source, row_dict
from core.privacy.subjects import ERASED_NAME

COLUMNS = (
    "id",
    "organisation_id",
    "external_ref",
    "email",
    "full_name",
    "country",
    "birth_date",
    "created_at",
    "erased_at",
)


def tombstone_ref(subject: DataSubject) -> str:
    digest = hashlib.sha256(f"{subject.id}:{subject.external_ref}".encode()).hexdigest()
    return f"erased-{digest[:32]}"


@register_source(order=LAST)
class ProfileSource:
    name = "profile"
    label = "Subject profile"
    description = "The subject's record: e-mail, name, country, birth date, customer reference."

    def collect(self, session: Session, subject: DataSubject) -> list[dict[str, Any]]:
        return [row_dict(subject, COLUMNS)]

    def erase(self, session: Session, subject: DataSubject) -> ErasureOutcome:
        if subject.erased_at is not None:  # a resumed run: already a tombstone
            return ErasureOutcome("anonymised", 1, _REASON)
        subject.external_ref = tombstone_ref(subject)
        subject.email = f"erased-{subject.id}@invalid"
        subject.full_name = ERASED_NAME
        subject.birth_date = None
        subject.erased_at = utcnow()
        session.flush()
        return ErasureOutcome("anonymised", 1, _REASON)


_REASON = (
    "E-mail, name, birth date and customer reference removed; a pseudonymous tombstone (id, "
    "country, dates) stays so the retained consent proof and request records keep their link."
)
