"""Data-subject requests on SQLite and PostgreSQL: opening with due dates by regime, bad input
(unknown subject, duplicates, future or stale dates, wrong kind for the country), verify,
assign, extend once, close and reject, the queue by due date with overdue alerts, permissions,
the timeline from the audit log, and the CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from core.auth.actor import Actor
from core.auth.roles import Role
from core.clock import utcnow
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.privacy import deadlines
from core.privacy import requests as rq
from core.privacy.cli_requests import requests_app
from core.privacy.subjects import SubjectInfo, register_subject
from tests.helpers import ADMIN, make_user

runner = CliRunner()


def _people() -> dict[str, Actor]:
    # only cora needs an account (assignees must exist); permissions need just the role
    return {
        "cora": make_user("cora", Role.COMPLIANCE_OFFICER),
        "finn": Actor("finn", Role.FINANCE),
        "mia": Actor("mia", Role.ML_ENGINEER),
    }


@pytest.fixture
def people(db_url: str) -> dict[str, Actor]:
    """On SQLite and PostgreSQL: for what depends on the backend (numbering, locking, queries)."""
    return _people()


@pytest.fixture
def on_sqlite(sqlite_db: str) -> dict[str, Actor]:
    """SQLite only: for rules that do not depend on the backend."""
    return _people()


def subject(
    email: str = "ana.novak@example.si", name: str = "Ana Novak", country: str = "SI"
) -> SubjectInfo:
    return register_subject(ADMIN, email=email, full_name=name, country=country)


def test_open_sets_reference_regime_and_due_date(people: dict[str, Actor]) -> None:
    cora = people["cora"]
    ana, kim = subject(), subject("kim@example.com", "Kim Lee", "US")
    received = utcnow() - timedelta(days=3)
    access = rq.open_request(cora, subject_id=ana.id, kind="access", received_at=received)
    know = rq.open_request(cora, subject_id=kim.id, kind="ccpa_know", channel="email")
    year = utcnow().year
    assert (access.reference, know.reference) == (f"DSR-{year}-00001", f"DSR-{year}-00002")
    assert access.regime == "GDPR" and know.regime == "CCPA"
    assert access.status == "received" and access.created_by == "cora"
    assert access.due_at == deadlines.due_date(deadlines.KINDS["access"], received)
    assert know.due_at.date() == (utcnow() + timedelta(days=45)).date()
    assert access.subject_label == "Ana Novak <ana.novak@example.si>"
    assert not access.overdue and 24 <= access.days_left <= 28
    queue = rq.list_requests(cora)
    assert [r.reference for r in queue] == [access.reference, know.reference]  # by due date


def test_bad_input_gets_clear_errors(on_sqlite: dict[str, Actor]) -> None:
    cora = on_sqlite["cora"]
    ana = subject()
    with pytest.raises(NotFound, match="No data subject #999"):
        rq.open_request(cora, subject_id=999, kind="access")
    first = rq.open_request(cora, subject_id=ana.id, kind="erasure")
    with pytest.raises(Conflict, match=f"{first.reference} is already an open erasure request"):
        rq.open_request(cora, subject_id=ana.id, kind="erasure")
    with pytest.raises(ValidationError, match="cannot be received in the future"):
        rq.open_request(
            cora, subject_id=ana.id, kind="access", received_at=utcnow() + timedelta(days=1)
        )
    with pytest.raises(ValidationError, match="more than a year ago"):
        rq.open_request(
            cora, subject_id=ana.id, kind="access", received_at=utcnow() - timedelta(days=400)
        )
    with pytest.raises(ValidationError, match="SI, which the GDPR covers"):
        rq.open_request(cora, subject_id=ana.id, kind="ccpa_delete")
    with pytest.raises(ValidationError, match="Unknown channel 'fax'"):
        rq.open_request(cora, subject_id=ana.id, kind="access", channel="fax")
    with pytest.raises(ValidationError, match="not a request reference"):
        rq.get_request(cora, "'; DROP TABLE privacy_requests; --")
    with pytest.raises(NotFound, match="No data-subject request DSR-2020-00042"):
        rq.get_request(cora, "dsr-2020-00042")


def test_a_request_received_past_its_deadline_is_accepted_and_flagged(
    on_sqlite: dict[str, Actor],
) -> None:
    cora = on_sqlite["cora"]
    late = rq.open_request(
        cora, subject_id=subject().id, kind="access", received_at=utcnow() - timedelta(days=40)
    )
    assert late.overdue and late.days_left < 0
    assert [r.reference for r in rq.overdue_requests(cora)] == [late.reference]
    opened = rq.timeline(cora, late.reference)[0]
    assert opened.action == "privacy.request.open" and opened.summary["overdue_on_entry"] is True
    with pytest.raises(ValidationError, match="must be notified before the original deadline"):
        rq.extend_deadline(cora, late.reference, "We need more time to search the archives.")


def test_verify_assign_extend_close_and_the_timeline(people: dict[str, Actor]) -> None:
    cora = people["cora"]
    info = rq.open_request(cora, subject_id=subject().id, kind="access", details="Wants a copy")
    ref = info.reference
    with pytest.raises(ValidationError, match="Verify the requester's identity"):
        rq.close_request(cora, ref, "Sent the export by e-mail.")
    with pytest.raises(ValidationError, match="Unknown verification method 'vibes'"):
        rq.verify_identity(cora, ref, method="vibes")
    verified = rq.verify_identity(cora, ref, method="email_link", note="link clicked 10:02")
    assert verified.status == "verified" and verified.verified_by == "cora"
    assert "identity verified (email_link): link clicked 10:02" in verified.details
    with pytest.raises(Conflict, match="already verified by cora"):
        rq.verify_identity(cora, ref, method="id_document")

    make_user("fred", Role.FINANCE)
    with pytest.raises(ValidationError, match="fred \\(finance\\) cannot work data-subject"):
        rq.assign_request(cora, ref, "fred")
    with pytest.raises(ValidationError, match="No active console account 'ghost'"):
        rq.assign_request(cora, ref, "ghost")
    assert rq.assign_request(cora, ref, "cora").assignee == "cora"
    assert rq.list_requests(cora, rq.QueueFilter(assignee="cora"))[0].reference == ref
    assert rq.list_requests(cora, rq.QueueFilter(assignee="")) == []
    assert rq.assignable_users(cora) == ["cora"]

    with pytest.raises(ValidationError, match="Give the reason"):
        rq.extend_deadline(cora, ref, "busy")
    extended = rq.extend_deadline(cora, ref, "Many requests at once; searching backups.")
    kind = deadlines.KINDS["access"]
    assert extended.due_at == deadlines.extended_due(kind, info.due_at) and extended.extended
    with pytest.raises(Conflict, match="already extended once"):
        rq.extend_deadline(cora, ref, "And a second time, please.")

    closed = rq.close_request(cora, ref, "Export sent through the customer portal.")
    assert closed.status == "completed" and closed.closed_at is not None and not closed.overdue
    with pytest.raises(Conflict, match="already completed"):
        rq.assign_request(cora, ref, "cora")
    assert rq.list_requests(cora) == []  # the default queue holds open requests only
    actions = [e.action for e in rq.timeline(cora, ref)]
    assert actions == [
        "privacy.request.open",
        "privacy.request.verify",
        "privacy.request.assign",
        "privacy.request.extend",
        "privacy.request.close",
    ]
    assert all("link clicked" not in str(e.summary) for e in rq.timeline(cora, ref))


def test_erasure_requests_close_only_through_erasure_or_rejection(
    on_sqlite: dict[str, Actor],
) -> None:
    cora = on_sqlite["cora"]
    info = rq.open_request(cora, subject_id=subject().id, kind="erasure")
    rq.verify_identity(cora, info.reference, method="account_login")
    with pytest.raises(ValidationError, match="run the erasure"):
        rq.close_request(cora, info.reference, "Deleted by hand.")
    with pytest.raises(ValidationError, match="at least 10 characters"):
        rq.reject_request(cora, info.reference, "no")
    rejected = rq.reject_request(
        cora, info.reference, "Legal hold: litigation pending (Art. 17(3)(e))."
    )
    assert rejected.status == "rejected" and "Legal hold" in rejected.resolution


def test_ccpa_opt_out_cannot_be_extended(on_sqlite: dict[str, Actor]) -> None:
    cora = on_sqlite["cora"]
    info = rq.open_request(cora, subject_id=subject(country="US").id, kind="ccpa_opt_out")
    with pytest.raises(ValidationError, match="cannot be extended"):
        rq.extend_deadline(cora, info.reference, "We would like more time for this one.")


def test_roles_without_permission_are_refused_and_it_shows_on_the_timeline(
    on_sqlite: dict[str, Actor],
) -> None:
    info = rq.open_request(on_sqlite["cora"], subject_id=subject().id, kind="access")
    with pytest.raises(PermissionDenied):
        rq.list_requests(on_sqlite["finn"])
    with pytest.raises(PermissionDenied):
        rq.verify_identity(on_sqlite["mia"], info.reference, method="email_link")
    with pytest.raises(PermissionDenied):
        rq.open_request(on_sqlite["finn"], subject_id=info.subject_id, kind="erasure")
    refused = rq.timeline(ADMIN, info.reference)[-1]
    assert (refused.actor, refused.outcome) == ("mia", "denied")


def test_queue_filters_and_due_soon(people: dict[str, Actor]) -> None:
    cora = people["cora"]
    ana, kim = subject(), subject("kim@example.com", "Kim Lee", "US")
    soon = rq.open_request(
        cora, subject_id=ana.id, kind="access", received_at=utcnow() - timedelta(days=26)
    )
    later = rq.open_request(cora, subject_id=kim.id, kind="ccpa_delete")
    assert [r.reference for r in rq.due_soon(cora, 7)] == [soon.reference]
    by_regime = rq.list_requests(cora, rq.QueueFilter(regimes=("CCPA",)))
    assert [r.reference for r in by_regime] == [later.reference]
    by_text = rq.list_requests(cora, rq.QueueFilter(text="KIM@example"))
    assert [r.reference for r in by_text] == [later.reference]
    assert rq.list_requests(cora, rq.QueueFilter(text="%")) == []  # matched literally
    assert [r.reference for r in rq.requests_of_subject(cora, ana.id)] == [soon.reference]
    with pytest.raises(ValidationError, match="Unknown status 'lost'"):
        rq.list_requests(cora, rq.QueueFilter(statuses=("lost",)))


def test_cli_open_verify_extend_list_close(on_sqlite: dict[str, Actor]) -> None:
    ana = subject()

    def ok(*args: str) -> str:
        result = runner.invoke(requests_app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    out = ok("open", str(ana.id), "access", "--details", "by e-mail")
    ref = out.split()[0]
    assert ref.startswith("DSR-") and "received" in out
    assert "verified" in ok("verify", ref, "--method", "id_document")
    assert ok("assign", ref, "cora").count("DSR-") == 1
    ok("extend", ref, "--reason", "Complex request across several systems.")
    listed = ok("list")
    assert ref in listed and "cora" in listed
    assert "completed" in ok("close", ref, "--resolution", "Sent the export.")
    assert ok("list") == "No requests.\n"
    failed = runner.invoke(requests_app, ["open", "999", "access"])
    assert failed.exit_code == 1 and "Error: No data subject #999" in failed.output
    failed = runner.invoke(requests_app, ["open", str(ana.id), "access", "--received", "tomorrow"])
    assert failed.exit_code == 1 and "is not a date" in failed.output
