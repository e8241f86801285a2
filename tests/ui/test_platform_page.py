from __future__ import annotations

import pytest

from core.auth.roles import Role
from tests.ui.conftest import (
    open_page,
    roles_allowed,
    signed_in_app,
)


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
    assert table.set_index("Concern").loc["Relational store", "State"] == "ok"
    assert "Stripe sync is off" in table.set_index("Concern").loc["Payments", "Detail"]
