from __future__ import annotations

import pytest

from core.auth.roles import Role
from tests.ui.conftest import (
    open_page,
    roles_allowed,
    signed_in_app,
)


@pytest.mark.parametrize("role", roles_allowed("audit"))
def test_renders_entries_chart_and_actions(role: Role) -> None:
    at = open_page(signed_in_app(role), "audit")
    assert not at.exception
    assert at.title[0].value == "Audit log"
    table = at.dataframe[0].value
    assert {"users.create", "demo.seed", "auth.sign_in"} <= set(table["Action"])
    assert len(at.get("plotly_chart")) == 1
    labels = [b.label for b in at.button]
    assert "Prepare CSV export" in labels and "Verify hash chain" in labels


def test_filters_and_injection_text() -> None:
    at = open_page(signed_in_app(Role.COMPLIANCE_OFFICER), "audit")
    at.multiselect(key="audit_actions").select("users.create").run()
    assert set(at.dataframe[0].value["Action"]) == {"users.create"}
    at.text_input(key="audit_text").input("' OR '1'='1").run()
    assert not at.exception
    assert at.info[0].value == "No entries match these filters."


def test_verify_and_export() -> None:
    at = open_page(signed_in_app(Role.COMPLIANCE_OFFICER), "audit")
    next(b for b in at.button if b.label == "Verify hash chain").click().run()
    assert at.success[0].value.startswith("Audit chain intact")
    next(b for b in at.button if b.label == "Prepare CSV export").click().run()
    assert not at.exception
    assert len(at.get("download_button")) == 1
