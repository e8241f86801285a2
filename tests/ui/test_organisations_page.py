from __future__ import annotations

import pytest

from core.auth.roles import Role
from tests.ui.conftest import (
    assert_page_refused,
    open_page,
    roles_allowed,
    roles_denied,
    signed_in_app,
)


def test_who_may_open_it() -> None:
    assert roles_allowed("organisations") == [Role.ADMIN, Role.COMPLIANCE_OFFICER, Role.FINANCE]


@pytest.mark.parametrize("role", roles_allowed("organisations"))
def test_lists_all_organisations_with_a_chart(role: Role) -> None:
    at = open_page(signed_in_app(role), "organisations")
    assert not at.exception
    assert len(at.dataframe[0].value) == 2000
    assert len(at.get("plotly_chart")) == 1


@pytest.mark.parametrize("role", roles_denied("organisations"))
def test_other_roles_cannot_open_it(role: Role) -> None:
    assert_page_refused(role, "organisations")


def test_search_and_filters() -> None:
    at = open_page(signed_in_app(Role.FINANCE), "organisations")
    at.selectbox(key="org_country").select("SI").run()
    table = at.dataframe[0].value
    assert len(table) > 0 and set(table["Country"]) == {"Slovenia"}
    assert all(name.endswith("d.o.o.") for name in table["Name"])
    at.selectbox(key="org_country").select("all").run()
    at.text_input(key="org_search").input("%' OR '1'='1").run()
    assert not at.exception and at.info[0].value == "No organisation matches."
