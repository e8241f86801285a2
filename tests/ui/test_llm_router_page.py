from __future__ import annotations

import pytest

from core.auth.roles import Role
from tests.ui.conftest import open_page, roles_allowed, signed_in_app


def _router(role: Role):  # type: ignore[no-untyped-def]
    at = open_page(signed_in_app(role), "llm_router")
    at.segmented_control(key="router_period").set_value("Last 30 days").run()
    return at


@pytest.mark.parametrize("role", roles_allowed("llm_router"))
def test_shows_deployments_traffic_and_ledger(role: Role) -> None:
    at = _router(role)
    assert not at.exception
    deployments = at.dataframe[0].value
    assert "local-smollm2" in set(deployments["Deployment"])
    ready = deployments.set_index("Deployment")["Ready"]
    assert ready["openai-gpt-4o"].startswith("no: no key configured")
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Requests"].replace(",", "")) > 1000  # the seeded demo traffic
    assert int(metrics["Failovers"].replace(",", "")) > 0
    assert len(at.get("plotly_chart")) >= 2


def test_only_admins_edit_the_configuration() -> None:
    admin = _router(Role.ADMIN)
    assert any(b.label == "Validate and save" for b in admin.button)
    ml = _router(Role.ML_ENGINEER)
    assert not any(b.label == "Validate and save" for b in ml.button)
    assert ml.text_area(key="router_yaml").disabled


def test_invalid_configuration_is_refused_with_the_reason() -> None:
    at = _router(Role.ADMIN)
    at.text_area(key="router_yaml").input("deployments: {}\naliases: {x: {deployments: [nope]}}")
    at.button(key="router_save").click().run()
    assert "unknown deployments: nope" in at.error[0].value
