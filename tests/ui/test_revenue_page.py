"""Revenue page: KPIs, the charts, receivables, cohorts, and the margin table that puts the
customers we lose money on first; the currency filter. Also the home page's Billing card, which
the sign-in already rendered.

The demo tenant (anchor 1 Nov 2026) gives a dozen starter customers heavy gpt-4o traffic in
October 2026: their LLM cost is above what they pay that month."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.auth.roles import Role
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

ALLOWED = roles_allowed("revenue")
KPIS = [
    "MRR",
    "ARR",
    "Paying customers",
    "ARPA",
    "Net new MRR, last month",
    "Logo churn, last month",
    "Revenue churn, last month",
    "Overdue receivables",
]


def amount(text: str) -> Decimal:
    """'EUR 1,234.56' -> Decimal('1234.56'); headline figures: 'EUR 395.7k', 'EUR 4.75M'."""
    number = text.split(" ", 1)[1].replace(",", "")
    scale = {"k": 1_000, "M": 1_000_000}.get(number[-1], 1)
    return Decimal(number.rstrip("kM")) * scale


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.mark.parametrize("role", ALLOWED)
def test_revenue_dashboard_and_home_card(role: Role) -> None:
    at = signed_in_app(role)
    card = metrics(at)  # the home page, drawn at sign-in
    assert "Billing" in [s.value for s in at.subheader]
    assert amount(card["MRR"]) > 0 and int(card["Drafts to finalise"].replace(",", "")) > 0
    at = open_page(at, "revenue")
    assert not at.exception
    kpis = metrics(at)
    assert list(kpis) == KPIS
    assert kpis["MRR"].startswith("EUR ") and amount(kpis["MRR"]) > 0
    exact = {m.label: m.help for m in at.metric}  # the cards show rounded headline figures
    assert amount(exact["ARR"].removeprefix("exactly ")) == 12 * amount(
        exact["MRR"].removeprefix("exactly ")
    )
    assert int(kpis["Paying customers"].replace(",", "")) > 1000
    assert amount(kpis["Overdue receivables"]) > 0  # September's late payers
    assert len(at.get("plotly_chart")) >= 7  # MRR, movements, churn, ageing, cohorts, margin x2
    assert {"MRR", "MRR movements", "Churn", "Receivables ageing", "Cohort retention"} <= {
        s.value for s in at.subheader
    }


def test_margin_puts_heavy_llm_customers_first_and_currency_filters() -> None:
    at = signed_in_app(Role.FINANCE)
    at.session_state["rev_range"] = (date(2026, 8, 1), date(2026, 10, 31))  # the seeded months
    at = open_page(at, "revenue")
    assert not at.exception
    assert at.selectbox(key="rev_margin_month").value == "2026-10"  # the last complete month
    customers = table_with(at, "Losing money")
    losing = customers[customers["Losing money"]]
    assert len(losing) >= 12  # the seeded heavy users, and maybe a few free-tier strays
    assert customers["Losing money"].iloc[: len(losing)].all()  # flagged at the top
    assert (losing["LLM cost"] > losing["Revenue"]).all()
    assert (losing["Plan"] == "Starter plan").sum() >= 12
    assert any(w.value.startswith(f"{len(losing)} customers cost more") for w in at.warning)
    history = table_with(at, "Net new")
    assert list(history["Month"]) == ["2026-08", "2026-09", "2026-10"]

    at.selectbox(key="rev_currency").select("USD").run()
    assert not at.exception
    kpis = metrics(at)
    assert all(kpis[k].startswith("USD ") for k in ("MRR", "ARR", "ARPA"))
    eur_total = len(customers)
    assert 0 < len(table_with(at, "Losing money")) < eur_total  # only USD-billed customers
