"""Consent events (append-only) and the state derived from them; consent receipts.

The state of (subject, purpose) is the kind of its latest event: `given` → active, `withdrawn`,
`expired`, or `none` when there is no event. Events are never edited: a correction is a new event.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, ValidationError
from core.privacy.models import ConsentEvent, ConsentPurpose, DataSubject
from core.privacy.purposes import PurposeInfo, digital_age_for, purpose_by_key, purpose_info
from core.privacy.subjects import load_subject, subject_info
from core.text import clean_text

EVENT_KINDS = ("given", "withdrawn", "expired")
CHANNELS = ("web_form", "mobile_app", "email", "phone", "paper", "api", "import", "review")
RECEIPT_VERSION = "KI-CR-v1.1.0"  # Kantara Initiative Consent Receipt Specification


@dataclass(frozen=True)
class EventInfo:
    id: int
    subject_id: int
    purpose: str
    kind: str
    ts: datetime
    channel: str
    notice_version: str
    proof_ref: str | None
    recorded_by: str
    note: str


@dataclass(frozen=True)
class ConsentState:
    purpose: PurposeInfo
    status: str  # active | withdrawn | expired | none
    since: datetime | None
    channel: str
    notice_version: str
    proof_ref: str | None

    @property
    def active(self) -> bool:
        return self.status == "active"


_STATUS = {"given": "active", "withdrawn": "withdrawn", "expired": "expired"}


def event_info(e: ConsentEvent, purpose_key: str) -> EventInfo:
    return EventInfo(
        e.id,
        e.subject_id,
        purpose_key,
        e.kind,
        e.ts,
        e.channel,
        e.notice_version,
        e.proof_ref,
        e.recorded_by,
        e.note,
    )


def latest_events(
    session: Session, subject_ids: Iterable[int] | None = None
) -> dict[tuple[int, int], ConsentEvent]:
    """The newest event per (subject, purpose): the current state, in one query."""
    query = select(ConsentEvent).order_by(ConsentEvent.ts, ConsentEvent.id)
    if subject_ids is not None:
        query = query.where(ConsentEvent.subject_id.in_(list(subject_ids)))
    latest: dict[tuple[int, int], ConsentEvent] = {}
    for event in session.scalars(query):
        latest[(event.subject_id, event.purpose_id)] = event
    return latest


def state_from(purpose: ConsentPurpose, event: ConsentEvent | None) -> ConsentState:
    info = purpose_info(purpose)
    if event is None:
        return ConsentState(info, "none", None, "", "", None)
    return ConsentState(
        info, _STATUS[event.kind], event.ts, event.channel, event.notice_version, event.proof_ref
    )


def consent_state(actor: Actor, subject_id: int) -> list[ConsentState]:
    """Every purpose with the subject's current state for it."""
    require(actor, Permission.PRIVACY_READ, action="privacy.consent.read", target=str(subject_id))
    with unit_of_work() as session:
        load_subject(session, subject_id)
        latest = latest_events(session, [subject_id])
        purposes = session.scalars(select(ConsentPurpose).order_by(ConsentPurpose.id))
        return [state_from(p, latest.get((subject_id, p.id))) for p in purposes]


def consent_history(actor: Actor, subject_id: int) -> list[EventInfo]:
    require(actor, Permission.PRIVACY_READ, action="privacy.consent.read", target=str(subject_id))
    with unit_of_work() as session:
        load_subject(session, subject_id)
        rows = session.execute(
            select(ConsentEvent, ConsentPurpose.key)
            .join(ConsentPurpose, ConsentPurpose.id == ConsentEvent.purpose_id)
            .where(ConsentEvent.subject_id == subject_id)
            .order_by(ConsentEvent.ts, ConsentEvent.id)
        )
        return [event_info(e, key) for e, key in rows]


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def below_digital_age(subject: DataSubject, on: datetime) -> int | None:
    """The digital age of consent the subject was below on `on`, or None."""
    if subject.birth_date is None:
        return None
    rule = digital_age_for(subject.country)
    if rule is None:
        return None
    return rule.age if age_on(subject.birth_date, on.date()) < rule.age else None


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def check_free_text(**fields: str | None) -> None:
    """Consent events are kept as proof after an erasure and cannot be edited, so their free
    text must not carry contact details: point to where the proof is instead."""
    for name, value in fields.items():
        if value and _EMAIL.search(value):
            raise ValidationError(
                f"The {name.replace('_', ' ')} holds an e-mail address. Consent records are kept "
                "after an erasure and cannot be edited: refer to the proof (form id, ticket "
                "number) instead of quoting personal data."
            )


def validate_event(
    subject: DataSubject,
    purpose: ConsentPurpose,
    kind: str,
    channel: str,
    ts: datetime,
    current: ConsentEvent | None,
) -> None:
    if subject.erased_at is not None:
        raise Conflict(f"Subject #{subject.id} was erased; no consent can be recorded for them.")
    if kind not in EVENT_KINDS:
        raise ValidationError(
            f"Unknown consent event {kind!r}: use one of {', '.join(EVENT_KINDS)}."
        )
    if channel not in CHANNELS:
        raise ValidationError(f"Unknown channel {channel!r}: use one of {', '.join(CHANNELS)}.")
    if ts > utcnow() + timedelta(minutes=5):
        raise ValidationError("A consent event cannot be dated in the future.")
    if kind == "given" and purpose.lawful_basis != "consent":
        raise ValidationError(
            f"'{purpose.name}' relies on {purpose.lawful_basis.replace('_', ' ')}, not on consent: "
            "there is no consent to record. Record an objection as a data-subject request instead."
        )
    if current is not None and ts < current.ts:
        raise ValidationError(
            "This event is older than the latest one recorded for this purpose "
            f"({current.ts:%Y-%m-%d %H:%M} UTC); add it as a note instead of rewriting history."
        )
    if kind in ("withdrawn", "expired") and (current is None or current.kind != "given"):
        raise Conflict(f"There is no active consent for '{purpose.name}' to mark {kind}.")


def append_event(
    session: Session,
    actor: Actor | str,
    subject: DataSubject,
    purpose: ConsentPurpose,
    kind: str,
    *,
    channel: str,
    ts: datetime,
    notice_version: str | None = None,
    proof_ref: str | None = None,
    note: str = "",
) -> ConsentEvent:
    event = ConsentEvent(
        subject_id=subject.id,
        purpose_id=purpose.id,
        kind=kind,
        ts=ts,
        channel=channel,
        notice_version=clean_text(notice_version or purpose.notice_version, 32),
        proof_ref=clean_text(proof_ref, 200) or None if proof_ref else None,
        recorded_by=actor.username if isinstance(actor, Actor) else actor,
        note=clean_text(note, 500),
    )
    session.add(event)
    return event


def record_consent(
    actor: Actor,
    subject_id: int,
    purpose_key: str,
    kind: str,
    *,
    channel: str = "web_form",
    ts: datetime | None = None,
    notice_version: str | None = None,
    proof_ref: str | None = None,
    note: str = "",
) -> EventInfo:
    """Append one consent event (given, withdrawn or expired) after checking it makes sense."""
    target = f"subject:{subject_id}"
    require(actor, Permission.CONSENT_MANAGE, action="privacy.consent.record", target=target)
    when = ts or utcnow()
    with unit_of_work() as session:
        subject = load_subject(session, subject_id)
        purpose = purpose_by_key(session, purpose_key)
        current = latest_events(session, [subject.id]).get((subject.id, purpose.id))
        validate_event(subject, purpose, kind, channel, when, current)
        check_free_text(proof_reference=proof_ref, note=note)
        event = append_event(
            session,
            actor,
            subject,
            purpose,
            kind,
            channel=channel,
            ts=when,
            notice_version=notice_version,
            proof_ref=proof_ref,
            note=note,
        )
        session.flush()
        under = below_digital_age(subject, when) if kind == "given" else None
        record(
            session,
            actor,
            "privacy.consent.record",
            target,
            {
                "purpose": purpose.key,
                "kind": kind,
                "channel": channel,
                "notice_version": event.notice_version,
                "proof": bool(event.proof_ref),
                "below_digital_age": under,
            },
        )
        return event_info(event, purpose.key)


def consent_receipt(
    actor: Actor, subject_id: int, *, controller: str = "Omni"
) -> dict[str, object]:
    """A consent receipt for the subject (the Kantara Consent Receipt v1.1 structure): every
    consent-based purpose with its current state and the full event history behind it."""
    target = f"subject:{subject_id}"
    require(actor, Permission.PRIVACY_READ, action="privacy.consent.receipt", target=target)
    with unit_of_work() as session:
        subject = load_subject(session, subject_id)
        info = subject_info(subject)
        latest = latest_events(session, [subject.id])
        purposes = list(session.scalars(select(ConsentPurpose).order_by(ConsentPurpose.id)))
        history = session.execute(
            select(ConsentEvent, ConsentPurpose.key)
            .join(ConsentPurpose, ConsentPurpose.id == ConsentEvent.purpose_id)
            .where(ConsentEvent.subject_id == subject.id)
            .order_by(ConsentEvent.ts, ConsentEvent.id)
        ).all()
        issued = utcnow()
        services = []
        for p in purposes:
            state = state_from(p, latest.get((subject.id, p.id)))
            services.append(
                {
                    "purpose": p.key,
                    "purposeName": p.name,
                    "lawfulBasis": purpose_info(p).basis_label,
                    "status": state.status,
                    "since": state.since.isoformat() if state.since else None,
                    "collectionMethod": state.channel or None,
                    "noticeVersion": state.notice_version or None,
                    "proofReference": state.proof_ref,
                    "events": [
                        {
                            "kind": e.kind,
                            "timestamp": e.ts.isoformat(),
                            "channel": e.channel,
                            "noticeVersion": e.notice_version,
                            "proofReference": e.proof_ref,
                        }
                        for e, key in history
                        if key == p.key
                    ],
                }
            )
        body: dict[str, object] = {
            "version": RECEIPT_VERSION,
            "jurisdiction": info.country,
            "consentTimestamp": issued.isoformat(),
            "piiPrincipalId": info.email if info.erased_at is None else f"subject-{info.id}",
            "piiControllers": [
                {"piiController": controller, "onBehalf": bool(info.organisation_id)}
            ],
            "services": services,
        }
        digest = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
        ).hexdigest()
        body["consentReceiptID"] = f"CR-{subject.id}-{digest[:16]}"
        record(
            session, actor, "privacy.consent.receipt", target, {"receipt": body["consentReceiptID"]}
        )
        return body
