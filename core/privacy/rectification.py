"""Rectification (GDPR Art. 16): correct what the registry holds about a subject, as part of a
verified rectification request. The audit entry names the fields changed, never their values."""

from __future__ import annotations

import re
from datetime import date

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, ValidationError
from core.privacy import deadlines
from core.privacy.requests import RequestInfo, info_for, load_request, require_open
from core.privacy.subjects import load_subject, validate_email
from core.text import clean_text


def rectify_subject(
    actor: Actor,
    reference: str,
    *,
    email: str | None = None,
    full_name: str | None = None,
    country: str | None = None,
    birth_date: date | None = None,
) -> RequestInfo:
    """Apply the corrections a rectification request asked for; unchanged fields stay as they
    are. The request stays open until it is closed with a resolution."""
    require(actor, Permission.DSR_MANAGE, action="privacy.request.rectify", target=reference)
    changes: dict[str, object] = {}
    if email is not None and email.strip():
        changes["email"] = validate_email(email)
    if full_name is not None and full_name.strip():
        changes["full_name"] = clean_text(full_name, 200)
    if country is not None and country.strip():
        code = clean_text(country, 10).upper()
        if not re.fullmatch(r"[A-Z]{2}", code):
            raise ValidationError(f"Country {country!r} is not an ISO 3166-1 alpha-2 code.")
        changes["country"] = code
    if birth_date is not None:
        if birth_date > utcnow().date():
            raise ValidationError("A birth date cannot be in the future.")
        changes["birth_date"] = birth_date
    with unit_of_work() as session:
        request = load_request(session, reference, for_update=True)
        require_open(request)
        if request.kind != "rectification":
            kind = deadlines.get_kind(request.kind).label.lower()
            raise ValidationError(
                f"{request.reference} is a request for {kind}, not rectification."
            )
        if request.verified_at is None:
            raise Conflict("Verify the requester's identity before changing their data.")
        subject = load_subject(session, request.subject_id)
        if subject.erased_at is not None:
            raise Conflict(
                f"Subject #{subject.id} was erased on {subject.erased_at:%Y-%m-%d}; writing new "
                "details onto the record would identify them again. Reject this request."
            )
        changed = sorted(k for k, v in changes.items() if getattr(subject, k) != v)
        if not changed:
            raise ValidationError("Nothing to correct: enter the values that differ.")
        for field in changed:
            setattr(subject, field, changes[field])
        if request.status == "verified":
            request.status = "in_progress"
        request.updated_at = utcnow()
        record(
            session,
            actor,
            "privacy.request.rectify",
            request.reference,
            {"subject_id": subject.id, "fields": changed},
        )
        return info_for(session, request)
