from __future__ import annotations

import pytest

from core.auth.roles import Role
from tests.ui.conftest import (
    open_page,
    roles_allowed,
    signed_in_app,
)


@pytest.mark.parametrize("role", roles_allowed("organisations"))
def test_lists_all_organisations_with_a_chart(role: Role) -> None:
    at = open_page(signed_in_app(role), "organisations")
    assert not at.exception
    assert len(at.dataframe[0].value) == 2000
    assert len(at.get("plotly_chart")) == 1


def test_search_and_filters() -> None:
    at = open_page(signed_in_app(Role.FINANCE), "organisations")
    at.selectbox(key="org_country").select("SI").run()
    table = at.dataframe[0].value
    assert len(table) > 0 and set(table["Country"]) == {"Slovenia"}
    assert all(name.endswith("d.o.o.") for name in table["Name"])
    at.selectbox(key="org_country").select("all").run()
    at.text_input(key="org_search").input("%' OR '1'='1").run()
    assert not at.exception and at.info[0].value == "No organisation matches."
