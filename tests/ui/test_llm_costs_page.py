from __future__ import annotations

import pytest

from core.auth.roles import Role
from tests.ui.conftest import open_page, roles_allowed, signed_in_app


@pytest.mark.parametrize("role", roles_allowed("llm_costs"))
def test_shows_spend_prices_and_budgets(role: Role) -> None:
    at = open_page(signed_in_app(role), "llm_costs")
    assert not at.exception
    prices = at.dataframe[0].value
    assert "gpt-4o-mini" in set(prices["Model"])
    assert any(f.label == "Add price" for f in at.button) or at.get("form")


def test_bad_price_and_budget_input_get_clear_errors() -> None:
    at = open_page(signed_in_app(Role.FINANCE), "llm_costs")
    inputs = {t.label: t for t in at.text_input}
    inputs["Provider"].input("openai")
    inputs["Model"].input("gpt-4o-mini")
    inputs["Input $ per million tokens"].input("-3")
    inputs["Output $ per million tokens"].input("1")
    next(b for b in at.button if b.label == "Add price").click().run()
    assert at.error[0].value == "Input price must be zero or more."
    inputs = {t.label: t for t in at.text_input}
    inputs["Team name or organisation number"].input("acme")
    inputs["Monthly limit ($)"].input("100")
    at.selectbox[0].select("customer")
    next(b for b in at.button if b.label == "Set budget").click().run()
    assert "names the organisation by its number" in at.error[0].value


def test_finance_sets_a_team_budget() -> None:
    at = open_page(signed_in_app(Role.FINANCE), "llm_costs")
    inputs = {t.label: t for t in at.text_input}
    inputs["Team name or organisation number"].input("product")
    inputs["Monthly limit ($)"].input("2500")
    next(b for b in at.button if b.label == "Set budget").click().run()
    assert at.success[0].value == "Budget for team product set."
    assert any("team product" in p.text for p in at.get("progress"))  # type: ignore[attr-defined]
