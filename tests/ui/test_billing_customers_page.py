"""Customers page: search finds a seeded customer and opens its detail; an invalid VAT id is
refused with a clear error and changes nothing; a plan change shows its proration before it is
confirmed (on a subscription the test starts itself, so seeded ones stay as they are)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from core.auth.roles import Role
from core.billing.customers import CustomerRow, search_customers
from tests.helpers import ADMIN
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

ALLOWED = roles_allowed("billing_customers")


def _seeded(match: Callable[[CustomerRow], bool]) -> CustomerRow:
    """The first seeded customer that `match`es and that a search by its name finds alone."""
    for row in search_customers(ADMIN, limit=5000):
        if match(row) and len(search_customers(ADMIN, row.name)) == 1:
            return row
    raise AssertionError("the demo tenant has no such customer")


def _click(at, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label).click().run()


@pytest.mark.parametrize("role", ALLOWED)
def test_search_finds_a_seeded_customer_and_shows_the_detail(role: Role) -> None:
    target = _seeded(lambda r: bool(r.vat_id) and r.subscription_status == "active")
    at = open_page(signed_in_app(role), "billing_customers")
    assert not at.exception
    assert len(at.dataframe[0].value) == 200  # the first page of every customer
    at.text_input(key="cust_search").input(target.vat_id.lower()).run()  # type: ignore[union-attr]
    assert not at.exception
    found = at.dataframe[0].value
    assert list(found["Customer #"]) == [target.id]
    assert found["Tax treatment"][0] == target.tax_note
    assert at.subheader[0].value == target.name  # a single match opens at once
    assert [m.value for m in at.metric[:2]] == [target.plan, "active"]
    invoices = at.dataframe[2].value  # search, billing details, then invoices
    assert set(invoices["Status"]) <= {"draft", "open", "paid", "uncollectible", "void"}
    assert all(t.startswith(f"{target.currency} ") for t in invoices["Total"])


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page


def test_an_invalid_vat_id_is_refused_and_changes_nothing() -> None:
    target = _seeded(lambda r: r.country == "DE" and bool(r.vat_id))
    at = open_page(signed_in_app(Role.FINANCE), "billing_customers")
    at.text_input(key="cust_search").input(target.name).run()
    at.text_input(key=f"cust_vat_{target.id}").input("DE123")
    _click(at, "Save details")
    assert not at.exception
    assert [e.value for e in at.error] == [
        "'DE123' is not a valid EU VAT number: it needs the country prefix (e.g. DE123456788) "
        "and the country's format and check digits."
    ]
    assert not at.success
    (after,) = search_customers(ADMIN, target.name)
    assert after == target


def test_a_plan_change_shows_the_proration_before_it_is_confirmed() -> None:
    target = _seeded(lambda r: r.currency == "EUR" and r.subscription_status == "none")
    at = open_page(signed_in_app(Role.FINANCE), "billing_customers")
    at.text_input(key="cust_search").input(target.name).run()
    at.selectbox(key=f"cust_start_plan_{target.id}").set_value("pro-eur")
    at.number_input(key=f"cust_start_seats_{target.id}").set_value(3)
    # a long trial keeps the revenue figures other tests read as they were
    at.number_input(key=f"cust_start_trial_{target.id}").set_value(60)
    _click(at, "Start subscription")
    assert not at.exception
    message = at.success[0].value
    started = re.fullmatch(rf"Started subscription #(\d+) for {re.escape(target.name)}\.", message)
    assert started, message
    sid = int(started.group(1))
    assert at.metric[1].value == "trialing"

    at.number_input(key=f"cust_change_seats_{sid}").set_value(5)
    _click(at, "Preview change")
    assert not at.exception
    assert any(m.value.startswith("From EUR 75.00 to EUR 125.00 a month") for m in at.markdown)
    credit, charge, net = (m.value for m in at.metric[4:7])
    assert credit.startswith("EUR -") and charge.startswith("EUR ")
    assert not at.success  # nothing changed yet: the change waits for the confirmation

    _click(at, "Confirm change")
    assert not at.exception
    assert at.success[0].value == (
        f"Subscription #{sid} now on pro-eur x 5; net proration this month {net}."
    )
