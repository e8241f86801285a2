"""Consent: events append-only, state derived from them, the review queue, bulk actions that
apply only what was previewed, receipts; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from core.audit.service import AuditFilter, query
from core.auth.actor import Actor
from core.auth.roles import Role
from core.db import get_engine, unit_of_work
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.privacy.consent import consent_history, consent_receipt, consent_state, record_consent
from core.privacy.consent_review import apply_bulk, preview_bulk, review_queue
from core.privacy.models import ConsentEvent
from core.privacy.purposes import digital_age_for, save_purpose, version_key
from core.privacy.subjects import register_subject, search_subjects
from tests.conftest import TEST_NOW

OFFICER = Actor("carla", Role.COMPLIANCE_OFFICER)
NOW = TEST_NOW  # the run's pinned clock starts here


def _purposes() -> None:
    save_purpose(
        OFFICER, "marketing", name="Marketing", lawful_basis="consent", notice_version="v2",
        reconsent_days=365, create=True,
    )  # fmt: skip
    save_purpose(
        OFFICER, "billing", name="Billing", lawful_basis="contract", notice_version="v1",
        create=True,
    )  # fmt: skip


def _subject(
    email: str = "ana.novak@example.si", born: date | None = None, country: str = "SI"
) -> int:
    return register_subject(
        OFFICER, email=email, full_name="Ana Novak", country=country, birth_date=born
    ).id


def test_state_follows_the_latest_event_and_history_keeps_everything(db_url: str) -> None:
    _purposes()
    sid = _subject()
    states = {s.purpose.key: s.status for s in consent_state(OFFICER, sid)}
    assert states == {"marketing": "none", "billing": "none"}
    record_consent(
        OFFICER, sid, "marketing", "given", proof_ref="form-1", ts=NOW - timedelta(days=3)
    )
    record_consent(OFFICER, sid, "marketing", "withdrawn", ts=NOW - timedelta(days=1))
    state = {s.purpose.key: s for s in consent_state(OFFICER, sid)}["marketing"]
    assert state.status == "withdrawn"
    assert [e.kind for e in consent_history(OFFICER, sid)] == ["given", "withdrawn"]
    actions = [e.action for e in query_all()]
    assert actions.count("privacy.consent.record") == 2


def query_all() -> list:  # type: ignore[type-arg]
    with unit_of_work() as session:
        return query(session, AuditFilter())


def test_nonsense_events_are_refused_with_reasons(db_url: str) -> None:
    _purposes()
    sid = _subject()
    with pytest.raises(ValidationError, match="relies on contract"):
        record_consent(OFFICER, sid, "billing", "given")
    with pytest.raises(Conflict, match="no active consent"):
        record_consent(OFFICER, sid, "marketing", "withdrawn")
    with pytest.raises(NotFound, match="Known purposes: marketing, billing"):
        record_consent(OFFICER, sid, "newsletter", "given")
    with pytest.raises(ValidationError, match="future"):
        record_consent(OFFICER, sid, "marketing", "given", ts=NOW + timedelta(days=2))
    with pytest.raises(ValidationError, match="Unknown channel"):
        record_consent(OFFICER, sid, "marketing", "given", channel="carrier pigeon")
    with pytest.raises(ValidationError, match="holds an e-mail address"):
        record_consent(OFFICER, sid, "marketing", "given", note="confirmed by ana@x.si")
    with pytest.raises(NotFound, match="No data subject #999"):
        record_consent(OFFICER, 999, "marketing", "given")
    record_consent(OFFICER, sid, "marketing", "given", ts=NOW - timedelta(days=1))
    with pytest.raises(ValidationError, match="older than the latest"):
        record_consent(OFFICER, sid, "marketing", "withdrawn", ts=NOW - timedelta(days=5))
    with pytest.raises(PermissionDenied):
        record_consent(Actor("fiona", Role.FINANCE), sid, "marketing", "withdrawn")


def test_consent_events_cannot_be_rewritten_in_the_database(db_url: str) -> None:
    _purposes()
    sid = _subject()
    record_consent(OFFICER, sid, "marketing", "given")
    with pytest.raises(DBAPIError, match="append-only"), get_engine().begin() as connection:
        connection.execute(update(ConsentEvent).values(kind="withdrawn"))
    with get_engine().connect() as connection:
        assert (
            connection.execute(text("SELECT kind FROM privacy_consent_events")).scalar() == "given"
        )


def test_review_queue_finds_what_needs_a_person(db_url: str) -> None:
    _purposes()
    fine = _subject("fine@example.si")
    stale = _subject("stale@example.si")
    no_proof = _subject("noproof@example.si")
    old_notice = _subject("old@example.si")
    child = _subject("child@example.si", born=(NOW - timedelta(days=14 * 365)).date())
    record_consent(OFFICER, fine, "marketing", "given", proof_ref="p1")
    record_consent(
        OFFICER, stale, "marketing", "given", proof_ref="p2", ts=NOW - timedelta(days=400)
    )
    record_consent(OFFICER, no_proof, "marketing", "given")
    record_consent(OFFICER, old_notice, "marketing", "given", proof_ref="p3", notice_version="v1")
    record_consent(OFFICER, child, "marketing", "given", proof_ref="p4")
    queue = {i.subject_id: i.reasons for i in review_queue(OFFICER)}
    assert queue == {
        stale: ("stale",),
        no_proof: ("missing_proof",),
        old_notice: ("notice_changed",),
        child: ("below_digital_age",),  # Slovenia: 15 (ZVOP-2 Art. 8)
    }
    assert [i.subject_id for i in review_queue(OFFICER, reasons=["stale"])] == [stale]
    with pytest.raises(ValidationError, match="Unknown review reason"):
        review_queue(OFFICER, reasons=["vibes"])
    # a new notice version for the purpose queues the consents given under the old one
    save_purpose(
        OFFICER, "marketing", name="Marketing", lawful_basis="consent", notice_version="v10",
        reconsent_days=365,
    )  # fmt: skip
    assert fine in {i.subject_id for i in review_queue(OFFICER, reasons=["notice_changed"])}
    with pytest.raises(ValidationError, match="only moves forward"):
        save_purpose(
            OFFICER, "marketing", name="Marketing", lawful_basis="consent", notice_version="v1",
        )  # fmt: skip


def test_bulk_action_applies_exactly_the_preview(db_url: str) -> None:
    _purposes()
    a, b, child = _subject("a@x.si"), _subject("b@x.si"), _subject("c@x.si", born=date(2013, 1, 1))
    for sid in (a, b, child):
        record_consent(OFFICER, sid, "marketing", "given")  # no proof: all queued
    keys = [(a, "marketing"), (b, "marketing"), (child, "marketing")]
    preview = preview_bulk(OFFICER, "reconfirm", keys)
    assert [c.subject_id for c in preview.changes] == [a, b]
    assert preview.skipped[0][0] == (child, "marketing")
    with pytest.raises(ValidationError, match="proof reference"):
        apply_bulk(OFFICER, "reconfirm", keys, preview.token)
    # the queue changes between preview and apply: refused, nothing written
    record_consent(OFFICER, b, "marketing", "withdrawn")
    with pytest.raises(Conflict, match="changed since the preview"):
        apply_bulk(OFFICER, "reconfirm", keys, preview.token, proof_ref="campaign-7")
    assert [e.kind for e in consent_history(OFFICER, a)] == ["given"]
    preview = preview_bulk(OFFICER, "expire", keys)
    assert apply_bulk(OFFICER, "expire", keys, preview.token) == 2  # a and the child
    states = {sid: consent_state(OFFICER, sid)[0].status for sid in (a, b, child)}
    assert states == {a: "expired", b: "withdrawn", child: "expired"}
    assert review_queue(OFFICER) == []


def test_receipt_shows_state_and_history_without_other_subjects(db_url: str) -> None:
    _purposes()
    sid, other = _subject(), _subject("someone@else.si")
    record_consent(OFFICER, sid, "marketing", "given", proof_ref="form-9", channel="mobile_app")
    record_consent(OFFICER, other, "marketing", "given")
    receipt = consent_receipt(OFFICER, sid)
    assert receipt["piiPrincipalId"] == "ana.novak@example.si"
    assert str(receipt["consentReceiptID"]).startswith(f"CR-{sid}-")
    services = {s["purpose"]: s for s in receipt["services"]}  # type: ignore[attr-defined]
    assert services["marketing"]["status"] == "active"
    assert services["marketing"]["collectionMethod"] == "mobile_app"
    assert len(services["marketing"]["events"]) == 1


def test_subject_registry_validation_and_search(db_url: str) -> None:
    sid = _subject()
    with pytest.raises(ValidationError, match="not an e-mail"):
        register_subject(OFFICER, email="nope", full_name="X", country="SI")
    with pytest.raises(ValidationError, match="ISO 3166"):
        register_subject(OFFICER, email="x@y.si", full_name="X", country="Slovenia")
    with pytest.raises(Conflict, match=f"Subject #{sid}"):
        register_subject(OFFICER, email="ana.novak@example.si", full_name="Ana", country="SI")
    assert [s.id for s in search_subjects(OFFICER, "NOVAK")] == [sid]
    assert search_subjects(OFFICER, "%' OR 1=1 --") == []
    assert search_subjects(OFFICER, "ana_novak") == []  # _ and % are literal, not wildcards
    with pytest.raises(ValidationError, match="future"):
        register_subject(
            OFFICER, email="z@y.si", full_name="Z", country="SI", birth_date=date(2999, 1, 1)
        )


def test_digital_age_data_and_version_order() -> None:
    assert digital_age_for("SI").age == 15  # type: ignore[union-attr]
    assert digital_age_for("DE").age == 16  # type: ignore[union-attr]
    assert digital_age_for("US").age == 13  # type: ignore[union-attr]
    assert digital_age_for("JP") is None
    assert version_key("v2") < version_key("v10")
    assert version_key("2025-01") < version_key("2025-11")
    assert version_key("V2") < version_key("v10")
