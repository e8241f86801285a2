"""Retention page: policies, the dry run, enforcement with its report; read-only for nobody
else (only admin and compliance see it)."""

from __future__ import annotations

import pytest

from core.auth.roles import Role
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

ALLOWED = roles_allowed("retention")


@pytest.mark.parametrize("role", ALLOWED)
def test_policies_and_dry_run_render(role: Role) -> None:
    at = open_page(signed_in_app(role), "retention")
    assert not at.exception
    policies = at.dataframe[0].value
    assert "LLM prompt and answer bodies" in set(policies["Category"])
    assert set(policies["Enabled"]) == {True}  # the demo tenant sets every suggested policy
    plan = at.dataframe[1].value
    assert set(plan["Category"]) == set(policies["Category"])


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page
# (not in their navigation, and the script refuses when run directly).


def test_set_a_policy_then_enforce_after_confirming() -> None:
    at = open_page(signed_in_app(Role.COMPLIANCE_OFFICER), "retention")
    at.selectbox[0].select("kb_questions")
    at.number_input[0].set_value(200)
    at.text_input[0].input("Answer quality review")
    at.button[0].click().run()  # Save policy (form submit)
    assert not at.exception
    assert at.success[0].value == "Saved the policy for Knowledge-base question log."
    row = at.dataframe[0].value.set_index("Key").loc["kb_questions"]
    assert row["Keep (days)"] == 200 and row["Legal basis"] == "Answer quality review"
    enforce = next(b for b in at.button if b.label == "Enforce retention now")
    assert enforce.disabled  # not before the dry run was confirmed
    at.checkbox(key="ret_ok").check().run()
    next(b for b in at.button if b.label == "Enforce retention now").click().run()
    assert not at.exception
    assert at.success[-1].value.startswith("Run #") and ": ok," in at.success[-1].value
    assert "Past runs" in [s.value for s in at.subheader]
