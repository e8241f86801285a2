"""Ledger rows -> Stripe parameters: pure functions, checked on rows built in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.billing.catalog import tiers_to_json
from core.billing.models import Coupon, Customer, Invoice, InvoiceLine, Price, Product, Subscription
from core.billing.pricing import Tier
from core.billing.stripe import mapping
from core.billing.stripe.client import key_mode
from core.errors import ValidationError

NOV = datetime(2026, 11, 1, tzinfo=UTC)


def price(scheme: str, unit_amount: str = "0", **fields: object) -> Price:
    return Price(
        id=7,
        lookup_key=f"{scheme}-eur",
        nickname="",
        currency="EUR",
        scheme=scheme,
        interval="month",
        unit_amount=unit_amount,
        active=True,
        **fields,
    )


def test_idempotency_keys_name_the_ledger_object() -> None:
    assert mapping.idempotency_key("ab12", "invoice", 42) == "omni-ab12-invoice-42-v1"
    assert mapping.idempotency_key("ab12", "invoice", 42, "tax") == "omni-ab12-invoice-42-tax-v1"


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("49900", {"unit_amount": 49900}),
        ("12.000", {"unit_amount": 12}),
        ("0.015", {"unit_amount_decimal": "0.015"}),
        ("1.5E-3", {"unit_amount_decimal": "0.0015"}),
    ],
)
def test_whole_amounts_are_integers_and_fractions_decimal_strings(
    amount: str, expected: dict[str, object]
) -> None:
    assert mapping.amount_fields(amount) == expected


def test_more_than_twelve_decimals_is_refused_before_stripe_sees_it() -> None:
    with pytest.raises(ValidationError, match="12 decimal places"):
        mapping.amount_fields(Decimal("0.0000000000001"))


def test_licensed_and_metered_prices() -> None:
    flat = mapping.price_params(price("flat", "49900"), "prod_1", None)
    assert flat["recurring"] == {"interval": "month", "usage_type": "licensed"}
    assert flat["currency"] == "eur" and flat["unit_amount"] == 49900
    assert flat["metadata"] == {"omni_price_key": "flat-eur", "omni_price_id": "7"}
    with pytest.raises(ValidationError, match="needs its meter"):
        mapping.price_params(price("per_unit", "0.015", metric="api_calls"), "prod_1", None)
    per_unit = mapping.price_params(price("per_unit", "0.015"), "prod_1", "mtr_1")
    assert per_unit["recurring"] == {"interval": "month", "usage_type": "metered", "meter": "mtr_1"}
    assert per_unit["unit_amount_decimal"] == "0.015"
    package = mapping.price_params(
        price("package", "500", package_size=1000, package_round_up=False), "prod_1", "mtr_1"
    )
    assert package["transform_quantity"] == {"divide_by": 1000, "round": "down"}


def test_tiered_prices() -> None:
    tiers = [Tier(100, Decimal("1.5"), 0), Tier(None, Decimal(1), 250)]
    volume = price("volume", tiers_json=tiers_to_json(tiers))
    params = mapping.price_params(volume, "prod_1", "mtr_1")
    assert params["billing_scheme"] == "tiered" and params["tiers_mode"] == "volume"
    assert "unit_amount" not in params and "transform_quantity" not in params
    assert params["tiers"] == [
        {"up_to": 100, "unit_amount_decimal": "1.5", "flat_amount": 0},
        {"up_to": "inf", "unit_amount": 1, "flat_amount": 250},
    ]


def test_products_customers_and_coupons() -> None:
    bare = mapping.product_params(Product(id=1, key="platform", name="Platform", description=""))
    assert "description" not in bare and bare["metadata"]["omni_product_key"] == "platform"
    customer = Customer(
        id=3, organisation_id=9, name="Acme", email="b@acme.example", country="DE", vat_id="DE1"
    )
    params = mapping.customer_params(customer)
    assert params["address"] == {"country": "DE"} and "tax_id_data" not in params
    assert params["metadata"] == {"omni_customer_id": "3", "omni_organisation_id": "9"}
    percent = Coupon(id=1, code="HALF", name="Half", percent_off_bp=1250, duration="forever")
    assert mapping.coupon_params(percent)["percent_off"] == "12.5"
    fixed = Coupon(
        id=2,
        code="TEN",
        name="Ten",
        amount_off=1000,
        currency="GBP",
        duration="repeating",
        duration_months=6,
    )
    params = mapping.coupon_params(fixed)
    assert (params["amount_off"], params["currency"], params["duration_in_months"]) == (
        1000,
        "gbp",
        6,
    )


def test_subscriptions_send_invoices_and_leave_metered_quantities_out() -> None:
    sub = Subscription(id=5, customer_id=3, status="trialing", trial_end=NOV)
    items = [
        mapping.ItemRef(price("per_seat", "1500"), "price_seats", 12),
        mapping.ItemRef(price("per_unit", "0.01"), "price_tokens", 1),
    ]
    params = mapping.subscription_params(sub, "cus_1", items, "cpn_1", 30, NOV - timedelta(days=1))
    assert params["items"] == [{"price": "price_seats", "quantity": 12}, {"price": "price_tokens"}]
    assert params["collection_method"] == "send_invoice" and params["days_until_due"] == 30
    assert params["trial_end"] == int(NOV.timestamp())
    assert params["discounts"] == [{"coupon": "cpn_1"}]
    assert params["expand"] == ["latest_invoice"]
    ended = mapping.subscription_params(sub, "cus_1", items, None, 30, NOV + timedelta(seconds=1))
    assert "trial_end" not in ended and "discounts" not in ended


def test_invoice_items_add_up_to_the_ledger_total() -> None:
    invoice = Invoice(
        id=11,
        number="INV-2026-000011",
        currency="EUR",
        period_start=NOV,
        subtotal=10_000,
        discount=1_000,
        tax=1_935,
        tax_rate_bp=2150,
        total=10_935,
        tax_note="",
        issued_at=NOV,
        due_at=NOV + timedelta(days=14),
    )
    lines = [
        InvoiceLine(id=2, kind="usage", description="Tokens", amount=4_000),
        InvoiceLine(
            id=1,
            kind="subscription",
            description="Plan",
            amount=6_000,
            period_start=NOV,
            period_end=NOV + timedelta(days=30),
        ),
    ]
    items = mapping.invoice_item_params(invoice, lines, "cus_1", "in_1")
    assert [(step, p["amount"], p["description"]) for step, p in items] == [
        ("line-1", 6_000, "Plan"),
        ("line-2", 4_000, "Tokens"),
        ("adjustment", -1_000, "Discount"),
        ("tax", 1_935, "VAT 21.5 %"),
    ]
    assert sum(p["amount"] for _, p in items) == invoice.total
    assert all(p["invoice"] == "in_1" and p["currency"] == "eur" for _, p in items)
    assert items[0][1]["period"] == {
        "start": int(NOV.timestamp()),
        "end": int((NOV + timedelta(days=30)).timestamp()),
    }
    params = mapping.invoice_params(invoice, "cus_1", mapping.days_until_due(invoice, 30))
    assert params["days_until_due"] == 14 and params["number"] == "INV-2026-000011"
    assert params["pending_invoice_items_behavior"] == "exclude"
    assert params["auto_advance"] is False and "description" not in params


@pytest.mark.parametrize(
    ("key", "mode"),
    [
        ("sk_test_abc", "test"),
        ("sk_live_abc", "live"),
        ("rk_test_abc", "test"),
        ("rk_live_abc", "live"),
        ("pk_test_abc", "unknown"),
        (None, "off"),
    ],
)
def test_key_mode(key: str | None, mode: str) -> None:
    assert key_mode(key) == mode
