"""A demo seeded weeks ago still looks alive: with the clock 60 days after the demo's anchor, the
pages whose default window (the last 30 days, the last complete month) holds no data say so and
offer the latest period that has some, instead of empty charts and zero counts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from console import deps
from console.navigation import PAGES
from core.auth.roles import Role
from core.clock import FrozenClock
from tests.conftest import TEST_NOW
from tests.ui.conftest import open_page, signed_in_app

SIXTY_DAYS_LATER = TEST_NOW + timedelta(days=60)  # 2026-12-31 12:00 UTC


@pytest.fixture(autouse=True)
def sixty_days_later(frozen_clock: FrozenClock) -> Iterator[FrozenClock]:
    frozen_clock.set(SIXTY_DAYS_LATER)
    deps.home_metrics.clear()  # home cards are cached for 30 s: drop those of "today"
    yield frozen_clock
    deps.home_metrics.clear()


def notices(at: AppTest) -> list[str]:
    return [i.value for i in at.info]


def test_llm_spend_offers_the_latest_30_days_with_traffic() -> None:
    at = open_page(signed_in_app(Role.FINANCE), "llm_costs")
    assert not at.exception
    notice = next(n for n in notices(at) if n.startswith("No LLM traffic in the last 30 days."))
    assert "The latest is from 2026-1" in notice
    assert not any(m.label.startswith("Spend") for m in at.metric)  # no "$0.00" headline
    assert not at.get("plotly_chart")
    show = at.button(key="costs_window__show")
    # 30 days ending with the newest traffic: the seeded October, or a UI test's call on the
    # anchor day
    assert re.fullmatch(r"Show 2026-10-0\d to 2026-(10-31|11-01)", show.label), show.label
    show.click().run()
    assert not at.exception
    spend = next(m for m in at.metric if m.label.startswith("Spend, "))
    assert spend.label == f"Spend, {show.label.removeprefix('Show ')}"
    assert float(spend.value.lstrip("$").replace(",", "")) > 0
    assert len(at.get("plotly_chart")) >= 2
    assert any(n.startswith("No LLM traffic in the last 30 days: showing the latest") for n in
               notices(at))  # fmt: skip
    at.button(key="costs_window__back").click().run()  # and back to the (empty) default
    assert any(n.startswith("No LLM traffic in the last 30 days.") for n in notices(at))


def test_router_traffic_offers_the_latest_period_with_traffic() -> None:
    at = open_page(signed_in_app(Role.ML_ENGINEER), "llm_router")
    at.segmented_control(key="router_period").set_value("Last 30 days").run()
    assert not at.exception
    assert any(n.startswith("No LLM traffic in the last 30 days.") for n in notices(at))
    assert not any(m.label == "Requests" for m in at.metric)
    assert at.dataframe[0].value is not None  # the deployments still show
    at.button(key="router_window_Last 30 days__show").click().run()
    assert not at.exception
    requests = next(m.value for m in at.metric if m.label == "Requests")
    assert int(requests.replace(",", "")) > 1000  # the seeded October traffic
    assert len(at.get("plotly_chart")) >= 2


def test_invoices_offer_the_latest_invoiced_month() -> None:
    at = open_page(signed_in_app(Role.FINANCE), "billing_invoices")
    assert not at.exception
    assert at.selectbox(key="inv_period").value == "2026-11"  # the month to run next
    assert "No invoices for 2026-11 yet. The latest invoices are of 2026-10." in notices(at)
    at.button(key="inv_show_latest").click().run()
    assert not at.exception
    assert at.selectbox(key="inv_period").value == "2026-10"
    assert "Invoices of 2026-10" in [s.value for s in at.subheader]
    assert len(at.dataframe[0].value) > 10


def test_margin_offers_the_latest_month_with_revenue() -> None:
    at = open_page(signed_in_app(Role.FINANCE), "revenue")
    assert not at.exception
    assert at.selectbox(key="rev_margin_month").value == "2026-11"
    assert any(
        n.startswith("No revenue and no LLM cost in these months. The latest month with revenue")
        for n in notices(at)
    )
    at.button(key="rev_margin_latest").click().run()
    assert not at.exception
    assert at.selectbox(key="rev_margin_month").value == "2026-10"
    assert any(w.value.endswith("cost more in LLM traffic than they paid.") for w in at.warning)


def test_home_cards_say_when_the_latest_activity_was() -> None:
    at = signed_in_app(Role.ADMIN)
    assert not at.exception
    requests = next(m for m in at.metric if m.label == "Requests")
    assert requests.value == "0"
    assert requests.help.startswith("none in the last 24 hours; the latest on 2026-1")


@pytest.mark.parametrize("key", [p.key for p in PAGES])
def test_every_page_opens_cleanly_two_months_on(key: str) -> None:
    at = open_page(signed_in_app(Role.ADMIN), key)
    assert not at.exception
    # errors on screen are alerts of the data itself (requests now overdue), not failures
    alerts = [e.value for e in at.error if e.icon == ":material/alarm:"]
    assert len(alerts) == len(at.error), [e.value for e in at.error]
    if key == "data_requests":
        assert alerts and "overdue request(s)" in alerts[0]
