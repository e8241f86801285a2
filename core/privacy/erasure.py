"""Erasure across every registered data source, resumable, ending with a completion certificate.

1. One transaction creates a `pending` step per registered source (the plan) and marks the
   request in progress.
2. Each source then runs in its OWN transaction: its changes, its step turning `done` (with
   action, rows and reason) and its audit entry commit together. A source that fails marks its
   step `failed` with the error, and the run stops there.
3. So a crash or a failure leaves a visible state ("partially erased: 3 of 7 sources done"),
   never a silent one; running the erasure again resumes with the steps not done yet (and adds
   steps for sources registered since).
4. When every step is done, the certificate (per-source actions, what is retained and why,
   timestamps, who, and a SHA-256 digest of its canonical JSON) is stored on the request, the
   request is closed, and both are audited.

The subject's profile is the last source (see `core.privacy.sources`), so a half-done erasure
can always still find the rest of the subject's data.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.models import AuditEntry
from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import (
    DomainError,
    IntegrityError,
    NotFound,
    ValidationError,
    stored_error_text,
)
from core.privacy import deadlines
from core.privacy.models import DataRequest, ErasureStep
from core.privacy.requests import load_request, normalise_reference, require_open
from core.privacy.sources import DataSource, get_source, prepare, registered_sources
from core.privacy.subjects import load_subject

log = logging.getLogger(__name__)

State = Literal["not_started", "partial", "failed", "completed"]
# (sources done, sources in the plan, source label, what is happening) for progress bars
Progress = Callable[[int, int, str, str], None]
CERTIFICATE_TYPE = "omni-erasure-certificate"


@dataclass(frozen=True)
class StepInfo:
    source: str
    label: str
    status: str  # pending | done | failed
    action: str
    rows: int
    reason: str
    error: str
    finished_at: datetime | None


@dataclass(frozen=True)
class ErasureStatus:
    reference: str
    state: State
    steps: list[StepInfo]
    done: int
    total: int
    message: str
    certificate: dict[str, Any] | None = None

    @property
    def needs_resume(self) -> bool:
        return self.state in ("partial", "failed")


# --- certificate -------------------------------------------------------------------------------


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def certificate_digest(certificate: dict[str, Any]) -> str:
    """SHA-256 of the certificate's canonical JSON without its own `sha256` field."""
    body = {k: v for k, v in certificate.items() if k != "sha256"}
    return hashlib.sha256(canonical(body)).hexdigest()


def verify_certificate(certificate: dict[str, Any]) -> bool:
    return certificate.get("sha256") == certificate_digest(certificate)


def _started_at(session: Session, reference: str) -> datetime | None:
    return session.scalar(
        select(AuditEntry.ts)
        .where(
            AuditEntry.target == reference,
            AuditEntry.action == "privacy.request.erase",
            AuditEntry.outcome == "ok",
        )
        .order_by(AuditEntry.seq)
        .limit(1)
    )


def _build_certificate(
    session: Session, request: DataRequest, steps: list[StepInfo], actor: Actor, now: datetime
) -> dict[str, Any]:
    started = _started_at(session, request.reference)
    totals = {a: sum(s.rows for s in steps if s.action == a) for a in ("deleted", "anonymised")}
    totals["retained"] = sum(s.rows for s in steps if s.action == "retained")
    certificate: dict[str, Any] = {
        "type": CERTIFICATE_TYPE,
        "version": 1,
        "request": request.reference,
        "kind": request.kind,
        "regime": request.regime,
        "legal_basis": deadlines.get_kind(request.kind).legal_basis,
        "subject_id": request.subject_id,
        "received_at": request.received_at.isoformat(),
        "due_at": request.due_at.isoformat(),
        "verified_at": request.verified_at.isoformat() if request.verified_at else None,
        "verification_method": request.verification_method,
        "started_at": started.isoformat() if started else None,
        "completed_at": now.isoformat(),
        "issued_by": actor.username,
        "sources": [
            {
                "source": s.source,
                "label": s.label,
                "action": s.action,
                "rows": s.rows,
                "reason": s.reason,
                "finished_at": s.finished_at.isoformat() if s.finished_at else None,
            }
            for s in steps
        ],
        "retained": [
            {"source": s.source, "label": s.label, "rows": s.rows, "reason": s.reason}
            for s in steps
            if s.action == "retained"
        ],
        "totals": totals,
    }
    certificate["sha256"] = certificate_digest(certificate)
    return certificate


# --- state -------------------------------------------------------------------------------------


def _label(name: str) -> str:
    try:
        return get_source(name).label
    except DomainError:
        return name


def _order() -> dict[str, int]:
    return {s.name: i for i, s in enumerate(registered_sources())}


def _steps(session: Session, request_id: int) -> list[StepInfo]:
    order = _order()
    rows = session.scalars(select(ErasureStep).where(ErasureStep.request_id == request_id))
    infos = [
        StepInfo(
            s.source,
            _label(s.source),
            s.status,
            s.action,
            s.rows,
            s.reason,
            s.error,
            s.finished_at,
        )
        for s in rows
    ]
    return sorted(infos, key=lambda s: (order.get(s.source, len(order)), s.source))


def _describe(steps: list[StepInfo], request: DataRequest) -> tuple[State, str]:
    done = sum(1 for s in steps if s.status == "done")
    total = len(steps)
    if request.certificate is not None:
        return "completed", f"Erasure completed on {request.closed_at:%Y-%m-%d}: {done} sources."
    if not steps:
        return "not_started", "Erasure not started."
    failed = next((s for s in steps if s.status == "failed"), None)
    if failed is not None:
        return "failed", (
            f"Partially erased: {done} of {total} sources done; {failed.label} failed: "
            f"{failed.error} Fix the cause, then resume the erasure."
        )
    return "partial", (
        f"Partially erased: {done} of {total} sources done (the run was interrupted). "
        "Resume the erasure to finish it."
    )


def _status(session: Session, request: DataRequest) -> ErasureStatus:
    steps = _steps(session, request.id)
    state, message = _describe(steps, request)
    certificate = json.loads(request.certificate) if request.certificate else None
    done = sum(1 for s in steps if s.status == "done")
    return ErasureStatus(request.reference, state, steps, done, len(steps), message, certificate)


def erasure_status(actor: Actor, reference: str) -> ErasureStatus:
    ref = normalise_reference(reference)
    require(actor, Permission.PRIVACY_READ, action="privacy.request.read", target=ref)
    with unit_of_work(read_only=True) as session:
        return _status(session, load_request(session, ref))


def get_certificate(actor: Actor, reference: str) -> dict[str, Any]:
    """The stored certificate, checked against its digest."""
    ref = normalise_reference(reference)
    require(actor, Permission.PRIVACY_READ, action="privacy.request.read", target=ref)
    with unit_of_work(read_only=True) as session:
        request = load_request(session, ref)
        if request.certificate is None:
            raise NotFound(f"{ref} has no completion certificate: the erasure has not finished.")
        certificate: dict[str, Any] = json.loads(request.certificate)
    if not verify_certificate(certificate):
        raise IntegrityError(f"The certificate of {ref} does not match its digest: it was edited.")
    return certificate


# --- running -----------------------------------------------------------------------------------


def _check_erasable(request: DataRequest) -> None:
    require_open(request)
    kind = deadlines.get_kind(request.kind)
    if not kind.erases:
        raise ValidationError(
            f"{request.reference} is a request for {kind.label.lower()}; only erasure and "
            "ccpa_delete requests erase data."
        )
    if request.verified_at is None:
        raise ValidationError(
            f"Verify the requester's identity before erasing anything for {request.reference}."
        )


def _plan(actor: Actor, ref: str, sources: list[DataSource]) -> tuple[list[str], int]:
    """Create the missing steps; the sources still to run, in order, and the plan's size."""
    with unit_of_work() as session:
        request = load_request(session, ref, for_update=True)
        _check_erasable(request)
        steps = {
            s.source: s
            for s in session.scalars(
                select(ErasureStep).where(ErasureStep.request_id == request.id)
            )
        }
        for source in sources:
            if source.name not in steps:
                steps[source.name] = ErasureStep(
                    request_id=request.id, source=source.name, status="pending"
                )
                session.add(steps[source.name])
        resumed = any(s.status != "pending" for s in steps.values())
        for step in steps.values():
            if step.status == "failed":  # the status shows the latest run; the audit keeps all
                step.status, step.error = "pending", ""
        todo = [s.name for s in sources if steps[s.name].status != "done"]
        todo += sorted(n for n, s in steps.items() if s.status != "done" and n not in todo)
        request.status, request.updated_at = "in_progress", utcnow()
        record(
            session,
            actor,
            "privacy.request.erase",
            ref,
            {"sources": len(steps), "to_run": len(todo), "resumed": resumed},
        )
        return todo, len(steps)


def _run_step(actor: Actor, ref: str, name: str) -> None:
    """One source in one transaction: its changes, its step and its audit entry together."""
    source = get_source(name)
    with unit_of_work(read_only=True) as session:
        subject_id = load_request(session, ref).subject_id
    prepare(source, subject_id, erasing=True)
    with unit_of_work() as session:
        request = load_request(session, ref, for_update=True)
        step = session.scalar(
            select(ErasureStep)
            .where(ErasureStep.request_id == request.id, ErasureStep.source == name)
            .with_for_update()
        )
        if step is None or step.status == "done":
            return  # a concurrent run got here first
        subject = load_subject(session, request.subject_id)
        outcome = source.erase(session, subject)
        step.status, step.action, step.rows = "done", outcome.action, outcome.rows
        step.reason, step.error, step.finished_at = outcome.reason[:500], "", utcnow()
        record(
            session,
            actor,
            "privacy.request.erase_step",
            ref,
            {"source": name, "action": outcome.action, "rows": outcome.rows},
        )
    if outcome.after_commit is not None:
        try:
            outcome.after_commit()
        except Exception:  # the step is committed and done; only a cache refresh was lost
            log.exception("after-commit work of erasure step %s of %s failed", name, ref)


def _record_failure(actor: Actor, ref: str, name: str, exc: BaseException) -> None:
    with unit_of_work() as session:
        request = load_request(session, ref)
        step = session.scalar(
            select(ErasureStep).where(
                ErasureStep.request_id == request.id, ErasureStep.source == name
            )
        )
        if step is not None:
            step.status, step.error, step.finished_at = "failed", stored_error_text(exc), utcnow()
        record(
            session,
            actor,
            "privacy.request.erase_step",
            ref,
            {"source": name, "error": type(exc).__name__},
            outcome="failed",
        )


def _finish(actor: Actor, ref: str) -> None:
    with unit_of_work() as session:
        request = load_request(session, ref, for_update=True)
        if request.certificate is not None:
            return
        steps = _steps(session, request.id)
        if not steps or any(s.status != "done" for s in steps):
            return  # not everything is done: the status says what is left
        now = utcnow()
        certificate = _build_certificate(session, request, steps, actor, now)
        request.certificate = json.dumps(certificate, ensure_ascii=False, sort_keys=True)
        request.status, request.closed_at, request.updated_at = "completed", now, now
        request.resolution = (
            f"Erased across {len(steps)} data sources; completion certificate "
            f"sha256 {certificate['sha256']}."
        )
        record(
            session,
            actor,
            "privacy.request.certificate",
            ref,
            {
                "sha256": certificate["sha256"],
                "sources": len(steps),
                "retained": [s["source"] for s in certificate["retained"]],
            },
        )
        record(
            session,
            actor,
            "privacy.request.close",
            ref,
            {"status": "completed", "late": now > request.due_at},
        )


def run_erasure(actor: Actor, reference: str, progress: Progress | None = None) -> ErasureStatus:
    """Run (or resume) the erasure of a verified erasure request; the resulting status."""
    ref = normalise_reference(reference)
    require(actor, Permission.DSR_ERASE, action="privacy.request.erase", target=ref)
    sources = registered_sources()
    todo, total = _plan(actor, ref, sources)
    done = total - len(todo)
    for name in todo:
        if progress is not None:
            progress(done, total, _label(name), "erasing")
        try:
            _run_step(actor, ref, name)
        except Exception as exc:  # the step's transaction rolled back; record why and stop
            if not isinstance(exc, DomainError):
                log.exception("erasure step %s of %s failed", name, ref)
            _record_failure(actor, ref, name, exc)
            break
        done += 1
    _finish(actor, ref)
    with unit_of_work(read_only=True) as session:
        status = _status(session, load_request(session, ref))
    if progress is not None:
        progress(status.done, status.total, "", status.state)
    return status
