"""Rectification (Art. 16): a verified rectification request corrects the subject's data; the
audit names the fields, never the values; other requests and unverified ones are refused."""

from __future__ import annotations

from datetime import date

import pytest

from core.audit.service import AuditFilter, query
from core.auth.actor import Actor
from core.auth.roles import Role
from core.db import unit_of_work
from core.errors import Conflict, PermissionDenied, ValidationError
from core.privacy.rectification import rectify_subject
from core.privacy.requests import get_request, open_request, verify_identity
from core.privacy.subjects import get_subject, register_subject

OFFICER = Actor("carla", Role.COMPLIANCE_OFFICER)


def test_verified_rectification_corrects_the_subject(db_url: str) -> None:
    sid = register_subject(OFFICER, email="ana@old.si", full_name="Ana Novk", country="SI").id
    request = open_request(OFFICER, subject_id=sid, kind="rectification")
    with pytest.raises(Conflict, match="Verify the requester"):
        rectify_subject(OFFICER, request.reference, full_name="Ana Novak")
    verify_identity(OFFICER, request.reference, method="account_login")
    with pytest.raises(ValidationError, match="Nothing to correct"):
        rectify_subject(OFFICER, request.reference, full_name="Ana Novk")
    with pytest.raises(ValidationError, match="not an e-mail"):
        rectify_subject(OFFICER, request.reference, email="ana at new")
    with pytest.raises(PermissionDenied):
        rectify_subject(Actor("milan", Role.ML_ENGINEER), request.reference, full_name="X")
    info = rectify_subject(
        OFFICER, request.reference, full_name="Ana Novak", email="Ana@New.si",
        birth_date=date(1990, 5, 4),
    )  # fmt: skip
    assert info.status == "in_progress"
    subject = get_subject(OFFICER, sid)
    assert (subject.full_name, subject.email, subject.birth_date) == (
        "Ana Novak", "ana@new.si", date(1990, 5, 4),
    )  # fmt: skip
    with unit_of_work() as session:
        [entry] = query(session, AuditFilter(actions=["privacy.request.rectify"], outcomes=["ok"]))
        summary = entry.summary
    assert "birth_date" in summary and "Novak" not in summary and "new.si" not in summary
    assert get_request(OFFICER, request.reference).status == "in_progress"


def test_only_rectification_requests_rectify(db_url: str) -> None:
    sid = register_subject(OFFICER, email="b@x.si", full_name="B", country="SI").id
    access = open_request(OFFICER, subject_id=sid, kind="access")
    verify_identity(OFFICER, access.reference, method="email_link")
    with pytest.raises(ValidationError, match="not rectification"):
        rectify_subject(OFFICER, access.reference, full_name="C")
