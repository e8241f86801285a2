"""Data-subject requests page: the queue with overdue alerts, opening and verifying a request,
building an export, running an erasure to its certificate; refused to roles without
privacy.read. Creates its own subjects (the demo tenant's privacy data may change)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from core.auth.roles import Role
from core.clock import utcnow
from core.privacy import requests as rq
from core.privacy.subjects import SubjectInfo, register_subject, search_subjects
from pages.data_requests import queue_frame
from tests.helpers import ADMIN
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

PAGE = "data_requests"
ALLOWED = roles_allowed(PAGE)


def _subject(email: str, name: str) -> SubjectInfo:
    known = search_subjects(ADMIN, email)
    if known:  # the UI suite shares one database: reuse the subject on a rerun
        return known[0]
    return register_subject(ADMIN, email=email, full_name=name, country="SI")


def _by_label(widgets, label: str):  # type: ignore[no-untyped-def]
    return next(w for w in widgets if w.label == label)


def _select_request(at: AppTest, reference: str) -> AppTest:
    at.selectbox(key="dsr_selected").set_value(reference)
    return at.run()


@pytest.mark.parametrize("role", ALLOWED)
def test_renders_the_queue_and_the_forms(role: Role) -> None:
    at = open_page(signed_in_app(role), PAGE)
    assert not at.exception
    assert [t.value for t in at.title] == ["Data-subject requests"]
    assert [t.label for t in at.tabs] == ["Queue", "New request", "Request"]
    assert at.text_input(key="dsr_find") is not None
    assert at.multiselect(key="dsr_status").value == list(rq.OPEN_STATUSES)


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page
# (not in their navigation, and the script refuses when run directly).


def test_an_overdue_request_is_alerted_and_highlighted() -> None:
    subject = _subject("ui-late@example.si", "Lara Late")
    late = rq.open_request(
        ADMIN, subject_id=subject.id, kind="objection", received_at=utcnow() - timedelta(days=45)
    )
    at = open_page(signed_in_app(Role.COMPLIANCE_OFFICER), PAGE)
    assert not at.exception
    alert = next(e.value for e in at.error if "overdue request(s)" in e.value)
    assert late.reference in alert
    queue = at.dataframe[0].value
    row = queue[queue["Reference"] == late.reference].iloc[0]
    assert bool(row["Overdue"]) and row["Days left"] < 0
    rq.reject_request(ADMIN, late.reference, "Test request, withdrawn by the subject.")


def test_open_verify_and_export_a_request_through_the_page() -> None:
    subject = _subject("ui-uma@example.si", "Uma Ilić")
    at = open_page(signed_in_app(Role.COMPLIANCE_OFFICER), PAGE)
    at.text_input(key="dsr_find").input("ui-uma@example.si").run()
    assert at.selectbox(key="dsr_subject").value.id == subject.id
    at.selectbox(key="dsr_new_kind").set_value("access")
    at.text_area(key="dsr_new_details").input("Wants a copy of everything.")
    _by_label(at.button, "Open request").click().run()
    assert not at.exception
    opened = at.success[0].value
    assert opened.startswith("Opened DSR-")
    reference = opened.split()[1].rstrip(";")
    assert at.selectbox(key="dsr_selected").value == reference

    at.selectbox(key=f"dsr_verify_method_{reference}").set_value("id_document")
    at.text_input(key=f"dsr_verify_note_{reference}").input("Passport checked on a video call")
    _by_label(at.button, "Record verification").click().run()
    assert not at.exception
    assert at.success[0].value == f"Identity verified for {reference}."
    info = rq.get_request(ADMIN, reference)
    assert info.status == "verified" and info.verified_by == "ui-compliance-officer"

    at.button(key="dsr_export_button").click().run()
    assert not at.exception
    assert at.success[0].value.startswith(f"Built the export of {reference}")
    assert len(at.get("download_button")) == 1
    timeline = at.dataframe[-1].value
    assert list(timeline["Action"]) == ["open", "verify", "export", "download"]

    at.text_area(key=f"dsr_close_resolution_{reference}").input("Export sent through the portal.")
    at.button(key="dsr_close").click().run()
    assert at.success[0].value == f"Closed {reference}."
    assert rq.get_request(ADMIN, reference).status == "completed"


def test_a_duplicate_is_refused_with_a_clear_error() -> None:
    subject = _subject("ui-dup@example.si", "Dora Dup")
    first = rq.open_request(ADMIN, subject_id=subject.id, kind="rectification")
    at = open_page(signed_in_app(Role.ADMIN), PAGE)
    at.text_input(key="dsr_find").input("ui-dup@example.si").run()
    at.selectbox(key="dsr_new_kind").set_value("rectification")
    _by_label(at.button, "Open request").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]  # the overdue alert of the demo queue comes first
    assert any(f"{first.reference} is already an open rectification request" in e for e in errors)
    rq.reject_request(ADMIN, first.reference, "Test request, withdrawn by the subject.")


def test_erasure_runs_from_the_page_to_the_certificate() -> None:
    subject = _subject("ui-erin@example.si", "Erin Erase")
    info = rq.open_request(ADMIN, subject_id=subject.id, kind="erasure")
    rq.verify_identity(ADMIN, info.reference, method="account_login")
    at = _select_request(open_page(signed_in_app(Role.COMPLIANCE_OFFICER), PAGE), info.reference)
    assert at.button(key="dsr_erase_button").disabled  # not confirmed yet
    at.checkbox(key=f"dsr_erase_sure_{info.reference}").check().run()
    at.button(key="dsr_erase_button").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Erasure completed")
    steps = next(d.value for d in at.dataframe if "Rows" in d.value.columns)
    assert set(steps["Status"]) == {"done"} and list(steps["Source"])[-1] == "Subject profile"
    assert any(b.label == "Download certificate (JSON)" for b in at.get("download_button"))
    assert rq.get_request(ADMIN, info.reference).status == "completed"


def test_rectification_corrects_the_subject_through_the_page() -> None:
    subject = _subject("ui-rita@example.si", "Rita Rectfy")
    info = rq.open_request(ADMIN, subject_id=subject.id, kind="rectification")
    rq.verify_identity(ADMIN, info.reference, method="id_document")
    at = _select_request(open_page(signed_in_app(Role.COMPLIANCE_OFFICER), PAGE), info.reference)
    at.text_input(key=f"dsr_rectify_name_{info.reference}").input("Rita Rectify")
    _by_label(at.button, "Apply corrections").click().run()
    assert not at.exception
    assert at.success[0].value == f"Corrections applied for {info.reference}."
    assert search_subjects(ADMIN, "ui-rita@example.si")[0].full_name == "Rita Rectify"
    rq.close_request(ADMIN, info.reference, "Name corrected.")


def test_queue_frame_columns() -> None:
    assert list(queue_frame([]).columns) == [
        "Reference",
        "Subject",
        "Kind",
        "Regime",
        "Status",
        "Received",
        "Due (UTC)",
        "Days left",
        "Overdue",
        "Extended",
        "Assignee",
    ]


def test_assign_extend_and_reject_through_the_page() -> None:
    subject = _subject("ui-ari@example.si", "Ari Assign")
    info = rq.open_request(ADMIN, subject_id=subject.id, kind="restriction")
    at = _select_request(open_page(signed_in_app(Role.ADMIN), PAGE), info.reference)
    at.selectbox(key=f"dsr_assign_{info.reference}").set_value("ui-compliance-officer")
    at.button(key="dsr_assign_button").click().run()
    assert not at.exception
    assert at.success[0].value == "Assigned to ui-compliance-officer."
    at.text_area(key=f"dsr_extend_reason_{info.reference}").input("short")
    at.button(key="dsr_extend_button").click().run()
    assert any("Give the reason for the extension" in e.value for e in at.error)
    at.text_area(key=f"dsr_extend_reason_{info.reference}").input(
        "Several systems must be searched by hand."
    )
    at.button(key="dsr_extend_button").click().run()
    assert at.success[0].value == f"Extended {info.reference}."
    assert rq.get_request(ADMIN, info.reference).extended
    at.text_area(key=f"dsr_reject_reason_{info.reference}").input(
        "Identity could not be verified in time."
    )
    at.button(key="dsr_reject").click().run()
    assert at.success[0].value == f"Rejected {info.reference}."
    assert rq.get_request(ADMIN, info.reference).status == "rejected"
