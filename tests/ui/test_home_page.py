from __future__ import annotations

import pytest

from core.auth.roles import Role
from tests.ui.conftest import roles_allowed, signed_in_app

KB = "Knowledge base, last 7 days"
CARDS = {
    Role.ADMIN: [
        "Accounts",
        "Audit, last 24 hours",
        "Customers",
        "LLM traffic, last 24 hours",
        KB,
        "Privacy",
        "Billing",
        "Models",
    ],
    Role.COMPLIANCE_OFFICER: ["Audit, last 24 hours", "Customers", KB, "Privacy"],
    Role.FINANCE: ["Customers", "LLM traffic, last 24 hours", "Billing"],
    Role.ML_ENGINEER: ["LLM traffic, last 24 hours", KB, "Models"],
}


def test_every_role_has_a_home() -> None:
    assert roles_allowed("home") == list(Role)


@pytest.mark.parametrize("role", list(Role))
def test_home_shows_the_roles_numbers(role: Role) -> None:
    at = signed_in_app(role)
    assert not at.exception
    assert [h.value for h in at.subheader] == CARDS[role]
    metrics = {m.label: m.value for m in at.metric}
    if role in (Role.ADMIN, Role.COMPLIANCE_OFFICER, Role.FINANCE):
        assert metrics["Customer organisations"] == "2,000"
        assert 0 < int(metrics["In the EU (GDPR applies)"].replace(",", "")) < 2000
    if role is Role.ADMIN:
        active, total = (int(n) for n in metrics["Active users"].split(" / "))
        # demo + per-role UI users, and those other UI tests added (home metrics are cached 30 s)
        assert len(Role) * 2 <= active <= total
    if role is not Role.FINANCE:
        assert metrics["Collections"] == "1"  # the demo tenant's Regulations (GDPR)
    else:
        assert "Collections" not in metrics
    if role in (Role.ADMIN, Role.COMPLIANCE_OFFICER):
        assert int(metrics["Consents to review"].replace(",", "")) > 0  # the seeded history
    if role is Role.ML_ENGINEER:
        assert set(metrics) == {
            "Requests",
            "Failed attempts",
            "Spend",
            "Collections",
            "Questions",
            "Rated helpful",
            "Open drift alerts",
            "Active monitors",
            "Running experiments",
            "Last champion change",
        }
        assert "Customer organisations" not in metrics
        assert int(metrics["Open drift alerts"]) >= 1  # the demo's 2012 drift
        assert metrics["Active monitors"] == "2"
        assert metrics["Last champion change"] == "bike-demand v1"
