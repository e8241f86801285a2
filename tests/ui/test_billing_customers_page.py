"""Customers page: search finds a seeded customer and opens its detail (billing e-mail,
subscriptions with their item history, invoices); an invalid VAT id is refused with a clear
error and changes nothing; on a seeded customer's live subscription, a plan change shows its
proration before it is confirmed and then appears in the item history, and a cancellation needs
a reason (after which the customer can start a new subscription)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.auth.roles import Role
from core.billing.customers import CustomerRow, search_customers
from core.billing.pdf import money
from core.billing.subscriptions import SubscriptionView, customer_subscriptions
from tests.helpers import ADMIN
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

ALLOWED = roles_allowed("billing_customers")


def _seeded(match: Callable[[CustomerRow], bool]) -> CustomerRow:
    """The first seeded customer that `match`es and that a search by its name finds alone."""
    for row in search_customers(ADMIN, limit=5000):
        if match(row) and len(search_customers(ADMIN, row.name)) == 1:
            return row
    raise AssertionError("the demo tenant has no such customer")


def _click(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page that has `column`."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _items(at: AppTest) -> list[tuple[int, str, int, bool]]:
    """The item history as (subscription, price key, quantity, current?)."""
    items = table_with(at, "Price key")
    return [
        (int(r["Subscription #"]), r["Price key"], int(r["Quantity"]), r["Until"] == "(current)")
        for _, r in items.iterrows()
    ]


def _expected_items(subs: list[SubscriptionView]) -> list[tuple[int, str, int, bool]]:
    return [(s.id, i.price_key, i.quantity, i.ended_at is None) for s in subs for i in s.items]


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
    details = table_with(at, "Field").set_index("Field")["Value"]
    assert details["Billing e-mail"] == target.email
    subs = customer_subscriptions(ADMIN, target.id)
    listed = table_with(at, "Cancel reason")
    assert list(listed["Subscription #"]) == [s.id for s in subs]
    assert list(listed["Status"]) == [s.status for s in subs]
    assert _items(at) == _expected_items(subs)
    invoices = table_with(at, "Amount due")
    assert set(invoices["Status"]) <= {"draft", "open", "paid", "uncollectible", "void"}
    assert all(t.startswith(f"{target.currency} ") for t in invoices["Total"])


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page


def test_an_invalid_vat_id_is_refused_and_changes_nothing() -> None:
    target = _seeded(lambda r: r.country == "DE" and bool(r.vat_id))
    at = open_page(signed_in_app(Role.FINANCE), "billing_customers")
    at.text_input(key="cust_search").input(target.name).run()
    assert at.text_input(key=f"cust_email_{target.id}").value == target.email  # prefilled
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


def _changed_seats_before(row: CustomerRow) -> bool:
    """An active EUR Pro customer without a VAT id (so no other test here picks it) whose live
    subscription changed seats in the seeded history."""
    wanted = ("EUR", "pro", "active", None)
    if (row.currency, row.plan, row.subscription_status, row.vat_id) != wanted:
        return False
    subs = customer_subscriptions(ADMIN, row.id)
    plan_items = [i for i in subs[0].items if i.scheme == "per_seat"]
    return subs[0].live and len(plan_items) >= 2


def test_plan_change_on_a_seeded_subscription_then_cancel_with_a_reason() -> None:
    # Early in the name order: the invoices tests pick their customers at the end of it.
    target = _seeded(_changed_seats_before)
    (live, *older) = customer_subscriptions(ADMIN, target.id)
    current = next(i for i in live.items if i.scheme == "per_seat" and i.ended_at is None)
    at = open_page(signed_in_app(Role.FINANCE), "billing_customers")
    at.text_input(key="cust_search").input(target.name).run()
    assert not at.exception
    assert _items(at) == _expected_items([live, *older])  # the seeded seat change included
    sid = live.id
    assert at.selectbox(key=f"cust_change_plan_{sid}").value == current.price_key
    assert at.number_input(key=f"cust_change_seats_{sid}").value == current.quantity

    at.selectbox(key=f"cust_change_plan_{sid}").set_value("enterprise-eur")
    _click(at, "Preview change")
    assert not at.exception
    old = money(2500 * current.quantity, "EUR")
    assert any(m.value.startswith(f"From {old} to EUR 1,500.00 a month") for m in at.markdown)
    figures = {m.label: m.value for m in at.metric}
    assert figures["Credit for the unused rest"].startswith("EUR -")
    net = figures["Net this month"]
    assert not at.success  # nothing changed yet: the change waits for the confirmation
    assert _items(at) == _expected_items([live, *older])

    _click(at, "Confirm change")
    assert not at.exception
    assert at.success[0].value == (
        f"Subscription #{sid} now on enterprise-eur; net proration this month {net}."
    )
    history = _items(at)
    assert (sid, current.price_key, current.quantity, False) in history  # ended at the change
    assert (sid, "enterprise-eur", 1, True) in history
    assert len(history) == len(_expected_items([live, *older])) + 1

    assert at.button(key=f"cust_cancel_{sid}").disabled  # until the box is ticked
    at.checkbox(key=f"cust_cancel_ok_{sid}").check().run()
    _click(at, "Cancel subscription")  # no reason given
    assert not at.exception
    assert [e.value for e in at.error] == ["Say why the subscription ends (for churn reporting)."]
    assert customer_subscriptions(ADMIN, target.id)[0].live

    at.text_input(key=f"cust_cancel_reason_{sid}").input("Budget cut")
    _click(at, "Cancel subscription")
    assert not at.exception
    assert at.success[0].value == f"Subscription #{sid} of {target.name} cancelled."
    listed = table_with(at, "Cancel reason").set_index("Subscription #")
    assert (listed.loc[sid, "Status"], listed.loc[sid, "Cancel reason"]) == (
        "canceled",
        "Budget cut",
    )
    assert not any(current for *_, current in _items(at))  # every item ended
    assert "Start subscription" in [b.label for b in at.button]  # none live: start one
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", listed.loc[sid, "Ended"])
