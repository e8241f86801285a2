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
    assert roles_allowed("platform") == [Role.ADMIN]


@pytest.mark.parametrize("role", roles_allowed("platform"))
def test_shows_every_backend_and_its_state(role: Role) -> None:
    at = open_page(signed_in_app(role), "platform")
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["Concern"]) == [
        "Relational store",
        "Cache, rate limits, router state",
        "Model registry",
        "LLM providers",
        "Payments",
        "Jobs",
    ]
    assert table.set_index("Concern").loc["Relational store", "State"] == "🟢 ok"
    assert "Stripe sync is off" in table.set_index("Concern").loc["Payments", "Detail"]


@pytest.mark.parametrize("role", roles_denied("platform"))
def test_other_roles_cannot_open_it(role: Role) -> None:
    assert_page_refused(role, "platform")
