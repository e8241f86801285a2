"""Stripe sync page: with no key, a clear notice and the local counts (the buttons are off);
with a key (the fake Stripe server), the mode, and a pull of Stripe's events with its report and
the pulled event in the recent events table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.auth.roles import Role
from core.config import reload_settings
from tests.fakes.stripe_server import FakeStripe
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

ALLOWED = roles_allowed("stripe_sync")


@pytest.fixture
def no_stripe_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNI_STRIPE_API_KEY", raising=False)
    monkeypatch.delenv("OMNI_STRIPE_API_BASE", raising=False)
    reload_settings()


@pytest.fixture
def fake_stripe(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        monkeypatch.setenv("OMNI_STRIPE_API_KEY", fake.api_key)
        monkeypatch.setenv("OMNI_STRIPE_API_BASE", fake.url)
        reload_settings()
        yield fake
    monkeypatch.delenv("OMNI_STRIPE_API_KEY")
    monkeypatch.delenv("OMNI_STRIPE_API_BASE")
    reload_settings()  # later tests see no key again


@pytest.mark.parametrize("role", ALLOWED)
def test_sync_off_shows_the_notice_and_the_local_counts(role: Role, no_stripe_key: None) -> None:
    at = open_page(signed_in_app(role), "stripe_sync")
    assert not at.exception
    notice = at.warning[0].value
    assert notice.startswith("Stripe sync is off: set OMNI_STRIPE_API_KEY (test or live key).")
    assert "the ledger works on its own" in notice
    assert at.metric[0].value == "off"
    counts = at.dataframe[0].value.set_index("Kind")
    assert counts.loc["Customers", "In Stripe"] == 0
    assert counts.loc["Customers", "Pending"] > 100
    assert counts.loc["Prices", "Pending"] > 0
    assert at.button(key="stripe_push").disabled and at.button(key="stripe_pull").disabled
    assert "omni webhooks serve" in at.expander[0].markdown[0].value


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page


def test_with_a_key_pull_applies_stripe_events_and_reports(fake_stripe: FakeStripe) -> None:
    fake_stripe.emit("customer.created", {"id": "cus_ui_pull", "object": "customer"})
    at = open_page(signed_in_app(Role.FINANCE), "stripe_sync")
    assert not at.exception
    assert not at.warning  # no sync-off notice, and the key is a test key
    assert at.metric[0].value == "on (test mode)"
    assert not at.button(key="stripe_push").disabled
    at.button(key="stripe_pull").click().run()
    assert not at.exception
    assert at.success[0].value == "Read 1 Stripe event(s): 1 ignored."
    runs = at.dataframe[1].value.set_index("Operation")
    assert runs.loc["Pull", "When"] != "never"
    assert runs.loc["Events cursor", "Result"].startswith("evt_")
    via = at.dataframe[2].value
    assert via.set_index("Arrived by").loc["Events API pull", "Events"] >= 1
    recent = next(d.value for d in at.dataframe if "Stripe time" in d.value.columns)
    event = recent.iloc[0]  # newest first
    assert event["Event"] == runs.loc["Events cursor", "Result"].split(" ")[0]
    assert (event["Type"], event["Arrived by"], event["Outcome"]) == (
        "customer.created",
        "Events API pull",
        "ignored",
    )
    assert event["Stripe time"] and event["Received"]
    assert len(at.get("download_button")) == 2  # outcomes and recent events as CSV
