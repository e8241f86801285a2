"""Plans & prices page: the catalogue with readable amounts, tiers and units, a graduated price
added to a product chosen from the list through the tier table, the calculator (the core's quote)
on it and on a package price that rounds up, archiving, and a new coupon."""

from __future__ import annotations

import pytest

from core.auth.roles import Role
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

ALLOWED = roles_allowed("billing_plans")


def _click(at, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label).click().run()


@pytest.mark.parametrize("role", ALLOWED)
def test_catalogue_renders_with_readable_amounts(role: Role) -> None:
    at = signed_in_app(role)
    # the calculator on a package price: 25 GB-months are 3 started packages of 10
    at.session_state["calc_price"] = "kb-storage-eur"
    at.session_state["calc_quantity"] = 25
    at = open_page(at, "billing_plans")
    assert not at.exception
    prices = at.dataframe[0].value.set_index("Price key")
    assert prices.loc["pro-eur", "Amount"] == "EUR 25.00 per seat / month"
    assert prices.loc["kb-storage-eur", "Amount"] == (
        "EUR 10.00 per started package of 10 GB-months"
    )
    assert prices.loc["llm-output-eur", "Amount"] == "EUR 0.0000015 per unit"
    assert prices.loc["llm-input-eur", "Amount"] == (
        "1-1,000,000: EUR 0.00 each; 1,000,001-100,000,000: EUR 0.0000005 each; "
        "above 100,000,000: EUR 0.0000003 each"
    )
    assert prices.loc["api-calls-gbp", "Metric"] == "API calls"
    assert prices.loc["llm-output-eur", "Unit"] == "output tokens"
    assert prices.loc["pro-eur", "Unit"] == "seats"
    coupons = at.dataframe[1].value.set_index("Code")
    assert coupons.loc["LAUNCH20", "Off"] == "20 %"
    assert coupons.loc["NONPROFIT25", "Duration"] == "12 months"
    assert len(at.get("download_button")) == 2  # prices and coupons as CSV
    assert (at.metric[0].label, at.metric[0].value) == (
        "25 GB-months on kb-storage-eur",
        "EUR 30.00",
    )


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page


def test_add_a_graduated_price_price_it_and_archive_it() -> None:
    at = open_page(signed_in_app(Role.FINANCE), "billing_plans")
    at.selectbox(key="price_scheme").select("graduated").run()
    at.selectbox(key="price_product").set_value("api-calls")
    at.text_input(key="price_key").input("ui-tiered-eur")
    at.selectbox(key="price_metric").select("api_calls")
    at.text_input(key="price_unit_label").input("calls")
    # the tier table: two example rows edited, an open-ended third added
    at.session_state["price_tiers"] = {
        "edited_rows": {
            0: {"Up to": "100", "Unit amount": "0.50", "Flat amount": "5"},
            1: {"Up to": "1,000", "Unit amount": "0.25"},
        },
        "added_rows": [{"Up to": "", "Unit amount": "0.10", "Flat amount": ""}],
        "deleted_rows": [],
    }
    _click(at, "Add price")
    assert not at.exception
    assert [s.value for s in at.success] == ["Price ui-tiered-eur added."]
    row = at.dataframe[0].value.set_index("Price key").loc["ui-tiered-eur"]
    assert row["Scheme"] == "graduated" and row["Currency"] == "EUR" and row["Active"]
    assert (row["Product"], row["Unit"]) == ("API calls", "calls")
    assert row["Amount"] == (
        "1-100: EUR 0.50 each + EUR 5.00; 101-1,000: EUR 0.25 each; above 1,000: EUR 0.10 each"
    )

    # 100 x 0.50 + 5.00, 900 x 0.25, 500 x 0.10 = 50 + 5 + 225 + 50
    at.selectbox(key="calc_price").set_value("ui-tiered-eur")
    at.number_input(key="calc_quantity").set_value(1500).run()
    assert (at.metric[0].label, at.metric[0].value) == (
        "1,500 calls on ui-tiered-eur",
        "EUR 330.00",
    )

    at.selectbox(key="plans_archive_key").set_value("ui-tiered-eur").run()
    at.button(key="plans_archive_button").click().run()
    assert at.success[0].value == "Price ui-tiered-eur archived."
    assert not at.dataframe[0].value.set_index("Price key").loc["ui-tiered-eur", "Active"]


def test_add_a_repeating_percentage_coupon() -> None:
    at = open_page(signed_in_app(Role.FINANCE), "billing_plans")
    at.text_input(key="coupon_code").input("ui-spring")
    at.text_input(key="coupon_name").input("Spring offer")
    at.text_input(key="coupon_percent").input("12.5")
    at.selectbox(key="coupon_duration").select("repeating")
    at.number_input(key="coupon_months").set_value(6)
    _click(at, "Add coupon")
    assert not at.exception
    assert at.success[0].value == "Coupon UI-SPRING added."
    coupon = at.dataframe[1].value.set_index("Code").loc["UI-SPRING"]
    assert (coupon["Off"], coupon["Duration"]) == ("12.5 %", "6 months")
