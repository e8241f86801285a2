"""Data subjects: find them, read them, register them.

A subject is identified for a request by e-mail or by the customer's own reference; several
customer organisations may know the same e-mail, so a lookup can return more than one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, NotFound, ValidationError
from core.orgs.models import Organisation
from core.privacy.models import DataSubject
from core.text import clean_text, search_term

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}\.[A-Za-z]{2,63}$")
ERASED_NAME = "(erased)"


@dataclass(frozen=True)
class SubjectInfo:
    id: int
    organisation_id: int | None
    organisation: str
    external_ref: str
    email: str
    full_name: str
    country: str
    birth_date: date | None
    created_at: datetime
    erased_at: datetime | None

    @property
    def label(self) -> str:
        if self.erased_at is not None:
            return f"Subject #{self.id} (erased)"
        org = f" · {self.organisation}" if self.organisation else ""
        return f"{self.full_name} <{self.email}>{org}"


def subject_info(subject: DataSubject, organisation: str = "") -> SubjectInfo:
    return SubjectInfo(
        id=subject.id,
        organisation_id=subject.organisation_id,
        organisation=organisation,
        external_ref=subject.external_ref,
        email=subject.email,
        full_name=subject.full_name,
        country=subject.country,
        birth_date=subject.birth_date,
        created_at=subject.created_at,
        erased_at=subject.erased_at,
    )


def load_subject(session: Session, subject_id: int) -> DataSubject:
    subject = session.get(DataSubject, int(subject_id))
    if subject is None:
        raise NotFound(
            f"No data subject #{subject_id}. Search by e-mail or reference on the Consent page, "
            "or register the person first."
        )
    return subject


def _org_name(session: Session, organisation_id: int | None) -> str:
    if organisation_id is None:
        return ""
    return session.scalar(select(Organisation.name).where(Organisation.id == organisation_id)) or ""


def get_subject(actor: Actor, subject_id: int) -> SubjectInfo:
    require(actor, Permission.PRIVACY_READ, action="privacy.subject.read", target=str(subject_id))
    with unit_of_work() as session:
        subject = load_subject(session, subject_id)
        return subject_info(subject, _org_name(session, subject.organisation_id))


def search_subjects(actor: Actor, text: str = "", *, limit: int = 50) -> list[SubjectInfo]:
    """Subjects whose e-mail, name or reference contains `text` (all of them when empty)."""
    require(actor, Permission.PRIVACY_READ, action="privacy.subject.search")
    term = search_term(text)
    with unit_of_work() as session:
        query = select(DataSubject, Organisation.name).outerjoin(
            Organisation, Organisation.id == DataSubject.organisation_id
        )
        if term:
            needle = term.lower()  # matched literally: % and _ are not wildcards here
            query = query.where(
                or_(
                    func.lower(DataSubject.email).contains(needle, autoescape=True),
                    func.lower(DataSubject.full_name).contains(needle, autoescape=True),
                    func.lower(DataSubject.external_ref).contains(needle, autoescape=True),
                )
            )
        rows = session.execute(query.order_by(DataSubject.id).limit(max(1, min(limit, 500))))
        return [subject_info(s, org or "") for s, org in rows]


def validate_email(email: str) -> str:
    value = clean_text(email, 254).lower()
    if not _EMAIL.match(value):
        raise ValidationError(f"{email!r} is not an e-mail address (name@domain.tld).")
    return value


def register_subject(
    actor: Actor,
    *,
    email: str,
    full_name: str,
    country: str,
    organisation_id: int | None = None,
    external_ref: str = "",
    birth_date: date | None = None,
) -> SubjectInfo:
    """Register a person the tenant holds data about (for example a request from someone the
    subject registry did not know yet)."""
    require(actor, Permission.CONSENT_MANAGE, action="privacy.subject.register")
    address = validate_email(email)
    name = clean_text(full_name, 200)
    if not name:
        raise ValidationError("A data subject needs a name.")
    code = clean_text(country, 10).upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ValidationError(f"Country {country!r} is not an ISO 3166-1 alpha-2 code (e.g. SI).")
    if birth_date is not None and birth_date > utcnow().date():
        raise ValidationError("A birth date cannot be in the future.")
    ref = clean_text(external_ref, 128) or address
    with unit_of_work() as session:
        if organisation_id is not None and session.get(Organisation, organisation_id) is None:
            raise NotFound(f"No organisation #{organisation_id}.")
        clash = session.scalar(
            select(DataSubject.id).where(
                DataSubject.organisation_id.is_(None)
                if organisation_id is None
                else DataSubject.organisation_id == organisation_id,
                DataSubject.external_ref == ref,
            )
        )
        if clash is not None:
            raise Conflict(f"Subject #{clash} already has reference {ref!r} in that organisation.")
        subject = DataSubject(
            organisation_id=organisation_id,
            external_ref=ref,
            email=address,
            full_name=name,
            country=code,
            birth_date=birth_date,
        )
        session.add(subject)
        session.flush()
        record(
            session,
            actor,
            "privacy.subject.register",
            f"subject:{subject.id}",
            {"organisation_id": organisation_id, "country": code},
        )
        return subject_info(subject, _org_name(session, organisation_id))
