"""Processing purposes with their lawful basis (GDPR Art. 6(1)), and the digital age of consent
per country (Art. 8), kept as data in `data/privacy/digital_age_of_consent.csv`."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.db import unit_of_work
from core.errors import Conflict, NotFound, ValidationError
from core.privacy.models import ConsentPurpose
from core.text import clean_text

DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "privacy" / "digital_age_of_consent.csv"
GDPR_DEFAULT_AGE = 16  # Art. 8(1) where a member state set no lower age

LAWFUL_BASES = {
    "consent": "Art. 6(1)(a) consent",
    "contract": "Art. 6(1)(b) performance of a contract",
    "legal_obligation": "Art. 6(1)(c) legal obligation",
    "vital_interests": "Art. 6(1)(d) vital interests",
    "public_task": "Art. 6(1)(e) public task",
    "legitimate_interests": "Art. 6(1)(f) legitimate interests",
}
_KEY = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


@dataclass(frozen=True)
class PurposeInfo:
    id: int
    key: str
    name: str
    description: str
    lawful_basis: str
    notice_version: str
    reconsent_days: int

    @property
    def needs_consent(self) -> bool:
        return self.lawful_basis == "consent"

    @property
    def basis_label(self) -> str:
        return LAWFUL_BASES.get(self.lawful_basis, self.lawful_basis)


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Natural, case-insensitive order for notice versions: v2 < V10, 2025-01 < 2025-11."""
    parts = re.findall(r"\d+|\D+", version.strip().lower())
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in parts)


def purpose_info(p: ConsentPurpose) -> PurposeInfo:
    return PurposeInfo(
        p.id, p.key, p.name, p.description, p.lawful_basis, p.notice_version, p.reconsent_days
    )


@dataclass(frozen=True)
class DigitalAge:
    country: str
    age: int
    law: str


@lru_cache(maxsize=1)
def digital_ages() -> dict[str, DigitalAge]:
    with DATA_FILE.open(encoding="utf-8") as handle:
        return {
            row["country"]: DigitalAge(row["country"], int(row["age"]), row["law"])
            for row in csv.DictReader(handle)
        }


def digital_age_for(country: str) -> DigitalAge | None:
    """The age of digital consent for a country; EU members without an entry get GDPR's 16;
    None where no law sets one (the check does not apply)."""
    from core.orgs.countries import countries

    found = digital_ages().get(country.upper())
    if found is not None:
        return found
    known = countries().get(country.upper())
    if known is not None and known.eu:
        return DigitalAge(country.upper(), GDPR_DEFAULT_AGE, "GDPR Art. 8(1)")
    return None


def list_purposes(actor: Actor) -> list[PurposeInfo]:
    require(actor, Permission.PRIVACY_READ, action="privacy.purpose.list")
    with unit_of_work() as session:
        return [purpose_info(p) for p in session.scalars(select(ConsentPurpose).order_by("id"))]


def purpose_by_key(session: Session, key: str) -> ConsentPurpose:
    purpose = session.scalar(select(ConsentPurpose).where(ConsentPurpose.key == key))
    if purpose is None:
        known = ", ".join(session.scalars(select(ConsentPurpose.key).order_by("id"))) or "none yet"
        raise NotFound(f"Unknown purpose {key!r}. Known purposes: {known}.")
    return purpose


def _validated(
    name: str, lawful_basis: str, notice_version: str, reconsent_days: int
) -> tuple[str, str, str, int]:
    clean_name = clean_text(name, 120)
    if not clean_name:
        raise ValidationError("A purpose needs a name.")
    if lawful_basis not in LAWFUL_BASES:
        raise ValidationError(
            f"Unknown lawful basis {lawful_basis!r}: use one of {', '.join(LAWFUL_BASES)}."
        )
    version = clean_text(notice_version, 32)
    if not version:
        raise ValidationError("Name the privacy-notice version shown for this purpose (e.g. v3).")
    if not 30 <= int(reconsent_days) <= 3650:
        raise ValidationError("The re-consent period must be between 30 and 3650 days.")
    return clean_name, lawful_basis, version, int(reconsent_days)


def save_purpose(
    actor: Actor,
    key: str,
    *,
    name: str,
    lawful_basis: str,
    notice_version: str,
    reconsent_days: int = 730,
    description: str = "",
    create: bool = False,
) -> PurposeInfo:
    """Create a purpose (`create=True`) or change one. A new notice version puts every consent
    given under an older one into the review queue."""
    require(actor, Permission.CONSENT_MANAGE, action="privacy.purpose.save", target=key)
    if not _KEY.match(key):
        raise ValidationError(f"Purpose key {key!r}: lower-case letters, digits and _ only.")
    values = _validated(name, lawful_basis, notice_version, reconsent_days)
    with unit_of_work() as session:
        existing = session.scalar(select(ConsentPurpose).where(ConsentPurpose.key == key))
        if create and existing is not None:
            raise Conflict(f"A purpose with key {key!r} exists already.")
        purpose = existing if existing is not None else None
        if purpose is None:
            if not create:
                purpose_by_key(session, key)  # raises NotFound listing the known keys
            purpose = ConsentPurpose(key=key)
            session.add(purpose)
        before = None if existing is None else purpose_info(existing)
        if before is not None and version_key(values[2]) < version_key(before.notice_version):
            raise ValidationError(
                f"Notice version {values[2]!r} is older than the current "
                f"{before.notice_version!r}; a purpose's notice version only moves forward."
            )
        purpose.name, purpose.lawful_basis, purpose.notice_version, purpose.reconsent_days = values
        purpose.description = clean_text(description, 500)
        session.flush()
        record(
            session,
            actor,
            "privacy.purpose.create" if existing is None else "privacy.purpose.update",
            f"purpose:{key}",
            {
                "lawful_basis": purpose.lawful_basis,
                "notice_version": purpose.notice_version,
                "previous_notice_version": before.notice_version if before else None,
                "reconsent_days": purpose.reconsent_days,
            },
        )
        return purpose_info(purpose)
