"""Consent page: the review queue with a previewed bulk action, a subject's state and receipt,
purposes; refused to roles without privacy.read."""

from __future__ import annotations

import pytest

from core.auth.roles import Role
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

ALLOWED = roles_allowed("consent")


@pytest.mark.parametrize("role", ALLOWED)
def test_review_queue_renders_with_the_seeded_history(role: Role) -> None:
    at = open_page(signed_in_app(role), "consent")
    assert not at.exception
    assert "consents need review" in at.markdown[0].value
    queue = at.dataframe[0].value  # the editable queue (both roles may act on it)
    assert {"Select", "Subject", "Purpose", "Reasons"} <= set(queue.columns)
    assert len(queue) > 100
    assert len(at.get("plotly_chart")) == 1
    purposes = at.dataframe[1].value  # the Purposes tab
    assert "Model training on conversations" in set(purposes["Purpose"])


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page
# (not in their navigation, and the script refuses when run directly).


def test_filter_preview_and_apply_a_bulk_expiry() -> None:
    at = open_page(signed_in_app(Role.COMPLIANCE_OFFICER), "consent")
    at.multiselect[0].select("below_digital_age").run()
    before = int(at.markdown[0].value.split("**")[1].replace(",", ""))
    assert before > 0
    at.checkbox(key="consent_select_all").check().run()
    at.button[0].click().run()  # preview
    assert not at.exception
    assert "would be expired; 0 skipped" in at.info[0].value
    at.button[1].click().run()  # apply
    assert not at.exception
    assert at.success[0].value == f"Recorded {before} consent event(s)."
    at.run()
    assert at.success[0].value == "Nothing to review."


def test_subject_search_shows_state_and_receipt() -> None:
    at = open_page(signed_in_app(Role.ADMIN), "consent")
    at.text_input(key="consent_search").input("novak").run()
    assert not at.exception
    states = at.dataframe[1].value  # queue, then the chosen subject's state, then purposes
    assert list(states["Purpose"])[:2] == ["Providing the service", "Fraud and abuse prevention"]
    assert set(states["Status"]) <= {"active", "withdrawn", "expired", "none", "not consent-based"}
    at.button(key="consent_receipt_button").click().run()
    assert not at.exception
    assert at.get("download_button")
