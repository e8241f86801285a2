"""Privacy tables: data subjects, consent purposes and the append-only consent event stream,
data-subject requests with their per-source erasure steps, retention policies and their runs.

A subject's consent state is never stored: it is derived from the events, so history cannot be
overwritten and a receipt can always show how the current state came about. The events table is
append-only in the database too (triggers, as for the audit log).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, UTCDateTime


class DataSubject(Base):
    """An end user of one of the tenant's customer organisations (or a direct individual)."""

    __tablename__ = "privacy_subjects"
    __table_args__ = (
        UniqueConstraint("organisation_id", "external_ref", name="uq_privacy_subjects_org_ref"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    external_ref: Mapped[str] = mapped_column(String(128))  # the customer's id for this person
    email: Mapped[str] = mapped_column(String(254), index=True)
    full_name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2), index=True)  # ISO 3166-1 alpha-2
    birth_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set by a completed erasure: the row stays as a pseudonymous tombstone so consent proof and
    # request records keep their foreign keys, but every identifying field is gone.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConsentPurpose(Base):
    __tablename__ = "privacy_purposes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(500), default="")
    lawful_basis: Mapped[str] = mapped_column(String(32))  # GDPR Art. 6(1) (a)-(f)
    notice_version: Mapped[str] = mapped_column(String(32))  # the privacy notice now shown
    reconsent_days: Mapped[int] = mapped_column(Integer, default=730)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsentEvent(Base):
    __tablename__ = "privacy_consent_events"
    __table_args__ = (
        Index("ix_privacy_consent_events_subject_purpose", "subject_id", "purpose_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("privacy_subjects.id"))
    purpose_id: Mapped[int] = mapped_column(ForeignKey("privacy_purposes.id"))
    kind: Mapped[str] = mapped_column(String(16))  # given | withdrawn | expired
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    notice_version: Mapped[str] = mapped_column(String(32))
    proof_ref: Mapped[str | None] = mapped_column(String(200))
    recorded_by: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(String(500), default="")


class DataRequest(Base):
    """A data-subject request (GDPR Arts. 15-21, CCPA know / delete / opt-out)."""

    __tablename__ = "privacy_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("privacy_subjects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    regime: Mapped[str] = mapped_column(String(8))  # GDPR | CCPA
    status: Mapped[str] = mapped_column(String(16), index=True)
    channel: Mapped[str] = mapped_column(String(32), default="web_form")
    details: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    extension_reason: Mapped[str] = mapped_column(String(500), default="")
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_by: Mapped[str | None] = mapped_column(String(128))
    verification_method: Mapped[str] = mapped_column(String(64), default="")
    assignee: Mapped[str | None] = mapped_column(String(128), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str] = mapped_column(String(1000), default="")
    export_sha256: Mapped[str | None] = mapped_column(String(64))
    certificate: Mapped[str | None] = mapped_column(Text)  # JSON, for erasure requests
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ErasureStep(Base):
    """One data source's part of an erasure; a rerun skips the sources already done."""

    __tablename__ = "privacy_erasure_steps"
    __table_args__ = (UniqueConstraint("request_id", "source", name="uq_privacy_erasure_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("privacy_requests.id"), index=True)
    source: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # pending | done | failed
    action: Mapped[str] = mapped_column(String(16), default="")  # deleted|anonymised|retained|none
    rows: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(500), default="")
    error: Mapped[str] = mapped_column(String(1000), default="")
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RetentionPolicy(Base):
    __tablename__ = "privacy_retention_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(64), unique=True)
    duration_days: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # delete | anonymise
    legal_basis: Mapped[str] = mapped_column(String(300))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RetentionRun(Base):
    __tablename__ = "privacy_retention_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # running | ok | failed
    report: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of per-category results
