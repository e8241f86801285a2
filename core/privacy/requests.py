"""Data-subject requests: open, verify identity, assign, extend, close or reject; the queue by
due date, overdue alerts, and each request's timeline from the audit log.

Lifecycle: `received` -> `verified` (identity checked) -> `in_progress` (an export was built or
an erasure started) -> `completed` or `rejected`. Every step is audited with the request's
reference as the target, so the audit log is the request's timeline; summaries hold ids, kinds
and dates, never the subject's data (free text such as verification notes goes into the
request's own `details`, which an erasure scrubs).

A request whose deadline had already passed when it is entered (it arrived by post and sat in
a mailbox, say) is accepted: refusing it would hide the breach rather than fix it. It enters
the queue flagged overdue, and its opening audit entry records `overdue_on_entry`. A received
date in the future, or more than a year back (almost always a typo), is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit.models import AuditEntry
from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.models import User
from core.auth.roles import Permission, has_permission, parse_role
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, NotFound, ValidationError
from core.orgs.models import Organisation
from core.privacy import deadlines
from core.privacy.models import DataRequest, DataSubject, ErasureStep
from core.privacy.subjects import load_subject, subject_info
from core.text import clean_text, search_term

OPEN_STATUSES = ("received", "verified", "in_progress")
CLOSED_STATUSES = ("completed", "rejected")
STATUSES = OPEN_STATUSES + CLOSED_STATUSES
CHANNELS = ("web_form", "email", "phone", "post", "in_person", "authorised_agent")
VERIFICATION_METHODS: dict[str, str] = {
    "email_link": "Confirmed a link sent to the e-mail address on file",
    "account_login": "Signed in to their customer account",
    "id_document": "Identity document checked",
    "knowledge_check": "Answered questions only the person could know",
    "signed_declaration": "Signed declaration under penalty of perjury (CCPA)",
    "authorised_agent": "Authorised agent with the consumer's signed permission (CCPA)",
}
MAX_RECEIVED_AGE = timedelta(days=365)
CLOCK_SKEW = timedelta(minutes=5)
MIN_REASON_CHARS = 10
_REFERENCE = re.compile(r"^DSR-(\d{4})-(\d{5,})$")


@dataclass(frozen=True)
class RequestInfo:
    id: int
    reference: str
    subject_id: int
    subject_label: str
    kind: str
    kind_label: str
    regime: str
    status: str
    channel: str
    details: str
    received_at: datetime
    due_at: datetime
    extended: bool
    extension_reason: str
    verified_at: datetime | None
    verified_by: str | None
    verification_method: str
    assignee: str | None
    closed_at: datetime | None
    resolution: str
    export_sha256: str | None
    has_certificate: bool
    created_by: str
    updated_at: datetime
    days_left: int  # calendar days to the due day; negative once overdue
    overdue: bool  # open and past its deadline
    erasure_done: int = 0
    erasure_total: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def closed_late(self) -> bool:
        return self.closed_at is not None and self.closed_at > self.due_at

    @property
    def partially_erased(self) -> bool:
        return 0 < self.erasure_done < self.erasure_total


@dataclass(frozen=True)
class QueueFilter:
    statuses: tuple[str, ...] = OPEN_STATUSES
    kinds: tuple[str, ...] = ()
    regimes: tuple[str, ...] = ()
    assignee: str | None = None  # "" = unassigned only
    text: str = ""  # reference, subject e-mail or name contains
    overdue_only: bool = False
    subject_id: int | None = None
    limit: int = 500


@dataclass(frozen=True)
class TimelineEntry:
    seq: int
    ts: datetime
    actor: str
    action: str
    outcome: str
    summary: dict[str, Any]


# --- loading and presenting --------------------------------------------------------------------


def normalise_reference(reference: str) -> str:
    value = clean_text(reference, 32).upper()
    if not _REFERENCE.match(value):
        raise ValidationError(
            f"{reference[:40]!r} is not a request reference (format DSR-2026-00042)."
        )
    return value


def load_request(session: Session, reference: str, *, for_update: bool = False) -> DataRequest:
    ref = normalise_reference(reference)
    stmt = select(DataRequest).where(DataRequest.reference == ref)
    request = session.scalar(stmt.with_for_update() if for_update else stmt)
    if request is None:
        raise NotFound(f"No data-subject request {ref}: check the reference in the queue.")
    return request


def require_open(request: DataRequest) -> None:
    if request.status in CLOSED_STATUSES:
        when = request.closed_at.date().isoformat() if request.closed_at else "earlier"
        raise Conflict(f"{request.reference} is already {request.status} ({when}); nothing to do.")


# RequestInfo fields that are the model's columns as they are
_COPIED = (
    *("id", "reference", "subject_id", "kind", "regime", "status", "channel", "details"),
    *("received_at", "due_at", "extended", "extension_reason", "verified_at", "verified_by"),
    *("verification_method", "assignee", "closed_at", "resolution", "export_sha256"),
    *("created_by", "updated_at"),
)


def to_info(
    request: DataRequest,
    subject_label: str,
    now: datetime,
    progress: tuple[int, int] = (0, 0),
) -> RequestInfo:
    kind = deadlines.KINDS.get(request.kind)
    return RequestInfo(
        **{name: getattr(request, name) for name in _COPIED},
        subject_label=subject_label,
        kind_label=kind.label if kind else request.kind,
        has_certificate=request.certificate is not None,
        days_left=deadlines.days_left(request.due_at, now),
        overdue=request.status in OPEN_STATUSES and now > request.due_at,
        erasure_done=progress[0],
        erasure_total=progress[1],
    )


def _progress(session: Session, request_ids: list[int]) -> dict[int, tuple[int, int]]:
    if not request_ids:
        return {}
    done = func.sum(case((ErasureStep.status == "done", 1), else_=0))
    rows = session.execute(
        select(ErasureStep.request_id, done, func.count())
        .where(ErasureStep.request_id.in_(request_ids))
        .group_by(ErasureStep.request_id)
    )
    return {int(r): (int(d or 0), int(t)) for r, d, t in rows}


def _joined() -> Any:
    """Requests with their subject and the subject's organisation name."""
    return (
        select(DataRequest, DataSubject, Organisation.name)
        .join(DataSubject, DataSubject.id == DataRequest.subject_id)
        .outerjoin(Organisation, Organisation.id == DataSubject.organisation_id)
    )


def info_for(session: Session, request: DataRequest, now: datetime | None = None) -> RequestInfo:
    _, subject, org = session.execute(_joined().where(DataRequest.id == request.id)).one()
    progress = _progress(session, [request.id]).get(request.id, (0, 0))
    return to_info(request, subject_info(subject, org or "").label, now or utcnow(), progress)


def _note(request: DataRequest, actor: Actor, text: str) -> None:
    """Append a dated line to the request's case notes (kept out of the audit summary)."""
    stamp = utcnow().strftime("%Y-%m-%d %H:%M UTC")
    line = f"[{stamp}] {actor.username}: {text}"
    request.details = f"{request.details}\n{line}" if request.details else line


# --- opening -----------------------------------------------------------------------------------


def _check_received(received_at: datetime | None, now: datetime) -> datetime:
    if received_at is None:
        return now
    if received_at.tzinfo is None:
        raise ValidationError("The received time needs a time zone (UTC is used throughout).")
    if received_at > now + CLOCK_SKEW:
        raise ValidationError(
            f"A request cannot be received in the future ({received_at:%Y-%m-%d %H:%M} UTC)."
        )
    if received_at < now - MAX_RECEIVED_AGE:
        raise ValidationError(
            f"Received {received_at:%Y-%m-%d}: more than a year ago. Check the date; very old "
            "requests are recorded by an admin with a note in the case file."
        )
    return received_at


def _check_assignee(session: Session, username: str | None) -> str | None:
    name = clean_text(username or "", 128)
    if not name:
        return None
    user = session.scalar(select(User).where(User.username == name))
    if user is None or not user.is_active:
        raise ValidationError(f"No active console account {name!r} to assign the request to.")
    if not has_permission(parse_role(user.role), Permission.DSR_MANAGE):
        raise ValidationError(
            f"{name} ({user.role}) cannot work data-subject requests: assign someone with the "
            "compliance officer or admin role."
        )
    return name


def _next_reference(session: Session, year: int) -> str:
    prefix = f"DSR-{year}-"
    last = session.scalar(
        select(func.max(DataRequest.reference)).where(DataRequest.reference.startswith(prefix))
    )
    number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{number:05d}"


def _duplicate(session: Session, subject_id: int, kind: str) -> str | None:
    return session.scalar(
        select(DataRequest.reference).where(
            DataRequest.subject_id == subject_id,
            DataRequest.kind == kind,
            DataRequest.status.in_(OPEN_STATUSES),
        )
    )


def open_request(
    actor: Actor,
    *,
    subject_id: int,
    kind: str,
    regime: str | None = None,
    received_at: datetime | None = None,
    channel: str = "web_form",
    details: str = "",
    assignee: str | None = None,
) -> RequestInfo:
    """Record a request; its due date follows from the kind's regime and the received date."""
    require(
        actor, Permission.DSR_MANAGE, action="privacy.request.open", target=f"subject:{subject_id}"
    )
    now = utcnow()
    received = _check_received(received_at, now)
    if channel not in CHANNELS:
        raise ValidationError(
            f"Unknown channel {channel[:32]!r}: use one of {', '.join(CHANNELS)}."
        )
    text = clean_text(details, 5000)
    for attempt in range(3):  # two officers opening at once may draw the same number
        try:
            return _open(actor, subject_id, kind, regime, received, channel, text, assignee, now)
        except IntegrityError:
            if attempt == 2:
                raise Conflict(
                    "Another request was opened at the same moment; try again."
                ) from None
    raise AssertionError("unreachable")


def _open(
    actor: Actor,
    subject_id: int,
    kind_key: str,
    regime: str | None,
    received: datetime,
    channel: str,
    details: str,
    assignee: str | None,
    now: datetime,
) -> RequestInfo:
    with unit_of_work() as session:
        subject = load_subject(session, subject_id)
        if subject.erased_at is not None:
            raise Conflict(
                f"Subject #{subject.id} was erased on {subject.erased_at:%Y-%m-%d}: nothing "
                "identifying is held any more, so there is no data to act on."
            )
        kind = deadlines.check_kind(kind_key, regime, subject.country)
        existing = _duplicate(session, subject.id, kind.key)
        if existing is not None:
            raise Conflict(
                f"{existing} is already an open {kind.label.lower()} request for this subject: "
                "work that one instead of opening a duplicate."
            )
        request = DataRequest(
            reference=_next_reference(session, now.year),
            subject_id=subject.id,
            kind=kind.key,
            regime=kind.regime,
            status="received",
            channel=channel,
            details=details,
            received_at=received,
            due_at=deadlines.due_date(kind, received),
            assignee=_check_assignee(session, assignee),
            created_by=actor.username,
            updated_at=now,
        )
        session.add(request)
        session.flush()
        record(
            session,
            actor,
            "privacy.request.open",
            request.reference,
            {
                "subject_id": subject.id,
                "kind": kind.key,
                "regime": kind.regime,
                "channel": channel,
                "received_at": received.isoformat(),
                "due_at": request.due_at.isoformat(),
                "overdue_on_entry": now > request.due_at,
                "assignee": request.assignee,
            },
        )
        return info_for(session, request, now)


# --- working a request -------------------------------------------------------------------------


def verify_identity(actor: Actor, reference: str, *, method: str, note: str = "") -> RequestInfo:
    """Record how the requester proved they are the subject (Art. 12(6); CCPA §7060)."""
    ref = normalise_reference(reference)
    require(actor, Permission.DSR_MANAGE, action="privacy.request.verify", target=ref)
    if method not in VERIFICATION_METHODS:
        raise ValidationError(
            f"Unknown verification method {method[:40]!r}: use one of "
            f"{', '.join(VERIFICATION_METHODS)}."
        )
    with unit_of_work() as session:
        request = load_request(session, ref, for_update=True)
        require_open(request)
        if request.verified_at is not None:
            raise Conflict(
                f"{ref} was already verified by {request.verified_by} on "
                f"{request.verified_at:%Y-%m-%d} ({request.verification_method})."
            )
        now = utcnow()
        request.verified_at, request.verified_by = now, actor.username
        request.verification_method = method
        request.status = "verified"
        request.updated_at = now
        comment = clean_text(note, 1000)
        _note(request, actor, f"identity verified ({method})" + (f": {comment}" if comment else ""))
        record(session, actor, "privacy.request.verify", ref, {"method": method})
        return info_for(session, request, now)


def assign_request(actor: Actor, reference: str, assignee: str | None) -> RequestInfo:
    """Give the request to a compliance officer or admin (None or "" unassigns it)."""
    ref = normalise_reference(reference)
    require(actor, Permission.DSR_MANAGE, action="privacy.request.assign", target=ref)
    with unit_of_work() as session:
        request = load_request(session, ref, for_update=True)
        require_open(request)
        before = request.assignee
        request.assignee = _check_assignee(session, assignee)
        request.updated_at = utcnow()
        record(
            session, actor, "privacy.request.assign", ref, {"from": before, "to": request.assignee}
        )
        return info_for(session, request)


def extend_deadline(actor: Actor, reference: str, reason: str) -> RequestInfo:
    """Use the one extension the regime allows, before the deadline, with the reason that
    must be given to the subject (GDPR Art. 12(3); CCPA §1798.130(a)(2))."""
    ref = normalise_reference(reference)
    require(actor, Permission.DSR_MANAGE, action="privacy.request.extend", target=ref)
    why = clean_text(reason, 500)
    if len(why) < MIN_REASON_CHARS:
        raise ValidationError(
            "Give the reason for the extension (at least 10 characters): the subject must be "
            "told why, e.g. the complexity or number of their requests."
        )
    with unit_of_work() as session:
        request = load_request(session, ref, for_update=True)
        require_open(request)
        kind = deadlines.get_kind(request.kind)
        if request.extended:
            raise Conflict(
                f"{ref} was already extended once ({request.extension_reason!r}); "
                f"{kind.regime} allows one extension."
            )
        now = utcnow()
        if now > request.due_at:
            raise ValidationError(
                f"{ref} was due on {request.due_at:%Y-%m-%d}: an extension must be notified "
                "before the original deadline. Answer the request now."
            )
        old = request.due_at
        request.due_at = deadlines.extended_due(kind, old)
        request.extended, request.extension_reason = True, why
        request.updated_at = now
        record(
            session,
            actor,
            "privacy.request.extend",
            ref,
            {"regime": kind.regime, "from": old.isoformat(), "to": request.due_at.isoformat()},
        )
        return info_for(session, request, now)


def _close(request: DataRequest, status: str, text: str, now: datetime) -> dict[str, Any]:
    request.status, request.resolution = status, text
    request.closed_at, request.updated_at = now, now
    return {"status": status, "late": now > request.due_at, "due_at": request.due_at.isoformat()}


def close_request(actor: Actor, reference: str, resolution: str) -> RequestInfo:
    """Mark a verified request answered. Erasure requests close themselves when the erasure
    completes, with its certificate."""
    ref = normalise_reference(reference)
    require(actor, Permission.DSR_MANAGE, action="privacy.request.close", target=ref)
    text = clean_text(resolution, 1000)
    if len(text) < 5:
        raise ValidationError("Say how the request was answered (the resolution), briefly.")
    with unit_of_work() as session:
        request = load_request(session, ref, for_update=True)
        require_open(request)
        kind = deadlines.get_kind(request.kind)
        if kind.erases:
            raise ValidationError(
                f"{ref} is an erasure request: run the erasure, which closes it with a "
                "completion certificate, or reject it with the reason."
            )
        if request.verified_at is None:
            raise ValidationError(
                f"Verify the requester's identity before answering {ref}, or reject it."
            )
        summary = _close(request, "completed", text, utcnow())
        record(session, actor, "privacy.request.close", ref, summary)
        return info_for(session, request)


def reject_request(actor: Actor, reference: str, reason: str) -> RequestInfo:
    """Refuse a request (identity not verified, manifestly unfounded, Art. 12(5)) with the
    reason the subject is told. A half-done erasure cannot be rejected: finish it."""
    ref = normalise_reference(reference)
    require(actor, Permission.DSR_MANAGE, action="privacy.request.reject", target=ref)
    why = clean_text(reason, 1000)
    if len(why) < MIN_REASON_CHARS:
        raise ValidationError("Give the reason for the rejection (at least 10 characters).")
    with unit_of_work() as session:
        request = load_request(session, ref, for_update=True)
        require_open(request)
        done, total = _progress(session, [request.id]).get(request.id, (0, 0))
        if done:
            raise Conflict(
                f"{ref} is partially erased ({done} of {total} sources done): resume the "
                "erasure to completion; a subject must not be left half-erased."
            )
        summary = _close(request, "rejected", why, utcnow())
        record(session, actor, "privacy.request.reject", ref, summary)
        return info_for(session, request)


# --- reading -----------------------------------------------------------------------------------


def get_request(actor: Actor, reference: str) -> RequestInfo:
    ref = normalise_reference(reference)
    require(actor, Permission.PRIVACY_READ, action="privacy.request.read", target=ref)
    with unit_of_work(read_only=True) as session:
        return info_for(session, load_request(session, ref))


def _queue_query(flt: QueueFilter, now: datetime) -> Any:
    stmt = _joined()
    if flt.statuses:
        stmt = stmt.where(DataRequest.status.in_(list(flt.statuses)))
    if flt.kinds:
        stmt = stmt.where(DataRequest.kind.in_(list(flt.kinds)))
    if flt.regimes:
        stmt = stmt.where(DataRequest.regime.in_(list(flt.regimes)))
    if flt.assignee is not None:
        stmt = stmt.where(
            DataRequest.assignee.is_(None)
            if flt.assignee == ""
            else DataRequest.assignee == flt.assignee
        )
    if flt.subject_id is not None:
        stmt = stmt.where(DataRequest.subject_id == flt.subject_id)
    if flt.overdue_only:
        stmt = stmt.where(DataRequest.status.in_(OPEN_STATUSES), DataRequest.due_at < now)
    term = search_term(flt.text).lower()
    if term:
        stmt = stmt.where(
            func.lower(DataRequest.reference).contains(term, autoescape=True)
            | func.lower(DataSubject.email).contains(term, autoescape=True)
            | func.lower(DataSubject.full_name).contains(term, autoescape=True)
        )
    return stmt.order_by(DataRequest.due_at, DataRequest.reference)


def list_requests(actor: Actor, flt: QueueFilter | None = None) -> list[RequestInfo]:
    """The queue: soonest deadline first, with days left and the overdue flag."""
    require(actor, Permission.PRIVACY_READ, action="privacy.request.list")
    flt = flt or QueueFilter()
    unknown = set(flt.statuses) - set(STATUSES)
    if unknown:
        raise ValidationError(f"Unknown status {sorted(unknown)[0]!r}: use {', '.join(STATUSES)}.")
    now = utcnow()
    with unit_of_work(read_only=True) as session:
        rows = session.execute(_queue_query(flt, now).limit(max(1, min(flt.limit, 10_000)))).all()
        progress = _progress(session, [r[0].id for r in rows])
        return [
            to_info(r, subject_info(s, org or "").label, now, progress.get(r.id, (0, 0)))
            for r, s, org in rows
        ]


def overdue_requests(actor: Actor) -> list[RequestInfo]:
    """Open requests past their deadline, the longest overdue first."""
    return list_requests(actor, QueueFilter(overdue_only=True))


def due_soon(actor: Actor, within_days: int = 7) -> list[RequestInfo]:
    """Open requests due within `within_days` days that are not overdue yet."""
    return [r for r in list_requests(actor) if not r.overdue and r.days_left <= within_days]


def requests_of_subject(actor: Actor, subject_id: int) -> list[RequestInfo]:
    return list_requests(actor, QueueFilter(statuses=STATUSES, subject_id=subject_id))


def timeline(actor: Actor, reference: str) -> list[TimelineEntry]:
    """Every audit entry about the request (refused attempts included), oldest first."""
    ref = normalise_reference(reference)
    require(actor, Permission.PRIVACY_READ, action="privacy.request.read", target=ref)
    with unit_of_work(read_only=True) as session:
        load_request(session, ref)
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.target == ref).order_by(AuditEntry.seq)
        )
        return [
            TimelineEntry(e.seq, e.ts, e.actor, e.action, e.outcome, json.loads(e.summary))
            for e in entries
        ]


def assignable_users(actor: Actor) -> list[str]:
    """Active accounts whose role may work requests (for the assignee picker)."""
    require(actor, Permission.PRIVACY_READ, action="privacy.request.list")
    with unit_of_work(read_only=True) as session:
        users = session.execute(
            select(User.username, User.role).where(User.is_active.is_(True)).order_by(User.username)
        )
        return [
            name for name, role in users if has_permission(parse_role(role), Permission.DSR_MANAGE)
        ]
