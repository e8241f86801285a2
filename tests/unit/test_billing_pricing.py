"""Price arithmetic: tiers, packages, proration and allocation hold their invariants for any
input (hypothesis), and match hand-computed Stripe examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.billing.pricing import (
    Tier,
    allocate,
    exponent,
    graduated,
    package,
    per_unit,
    plan_change,
    prorate,
    to_minor,
    volume,
)
from core.errors import ValidationError

TIERS = [
    Tier(up_to=1_000, unit_amount=Decimal(0), flat_amount=0),  # first 1,000 free
    Tier(up_to=10_000, unit_amount=Decimal("0.5")),
    Tier(up_to=None, unit_amount=Decimal("0.2"), flat_amount=1_000),
]
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)

tier_lists = st.lists(
    st.tuples(st.integers(1, 10_000), st.decimals(0, 100, places=4), st.integers(0, 10_000)),
    min_size=1,
    max_size=5,
).map(
    lambda rows: [
        Tier(up_to=None if i == len(rows) - 1 else sum(r[0] for r in rows[: i + 1]),
             unit_amount=rows[i][1], flat_amount=rows[i][2])
        for i in range(len(rows))
    ]
)  # fmt: skip


def test_hand_computed_examples() -> None:
    assert graduated(TIERS, 0) == 0
    assert graduated(TIERS, 1_000) == 0
    assert graduated(TIERS, 1_001) == 1  # 0.5 rounds half up
    assert graduated(TIERS, 12_000) == 9_000 // 2 + 2_000 // 5 + 1_000
    assert volume(TIERS, 12_000) == 12_000 // 5 + 1_000
    assert volume(TIERS, 500) == 0
    assert package(500, 1_000, 2_001) == 1_500
    assert package(500, 1_000, 2_001, round_up=False) == 1_000
    assert per_unit(Decimal("0.00025"), 1_000_000) == 250
    assert to_minor("12.345", "EUR") == 1235 and to_minor("1234", "JPY") == 1234
    assert exponent("kwd") == 3


@given(tier_lists, st.integers(0, 100_000), st.integers(0, 100_000))
def test_graduated_never_falls_as_usage_grows(tiers: list[Tier], a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert 0 <= graduated(tiers, low) <= graduated(tiers, high)


@given(tier_lists, st.integers(1, 100_000))
def test_graduated_equals_the_sum_over_tiers(tiers: list[Tier], quantity: int) -> None:
    total, lower = Decimal(0), 0
    for tier in tiers:
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        if upper > lower:
            total += tier.unit_amount * (upper - lower) + tier.flat_amount
            lower = upper
    assert abs(graduated(tiers, quantity) - total) <= Decimal("0.5")


@given(st.integers(0, 10**9), st.integers(1, 10**6), st.integers(0, 10**7))
def test_package_counts_started_packages(price: int, size: int, quantity: int) -> None:
    assert package(price, size, quantity) == price * -(-quantity // size)
    assert package(price, size, quantity, round_up=False) == price * (quantity // size)


@given(st.integers(0, 10**9), st.integers(0, 30 * 86_400))
def test_proration_is_the_remaining_share(amount: int, seconds: int) -> None:
    at = START + timedelta(seconds=seconds)
    share = prorate(amount, START, END, at)
    assert 0 <= share <= amount
    assert prorate(amount, START, END, START) == amount and prorate(amount, START, END, END) == 0


@given(st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 30 * 86_400))
def test_a_plan_change_credits_old_and_charges_new(old: int, new: int, seconds: int) -> None:
    credit, charge = plan_change(old, new, START, END, START + timedelta(seconds=seconds))
    assert credit <= 0 <= charge
    if old == new:
        assert credit == -charge  # changing to the same price costs nothing


@given(st.integers(-(10**9), 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=20))
def test_allocation_is_exact(total: int, weights: list[int]) -> None:
    if sum(weights) == 0:
        with pytest.raises(ValidationError):
            allocate(total, weights)
        return
    parts = allocate(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        exact = Decimal(total) * weight / sum(weights)
        assert abs(part - exact) < 1


def test_bad_input_is_refused_with_a_reason() -> None:
    with pytest.raises(ValidationError, match="last tier"):
        graduated([Tier(up_to=10)], 5)
    with pytest.raises(ValidationError, match="strictly increasing"):
        graduated([Tier(up_to=10), Tier(up_to=5), Tier(up_to=None)], 5)
    with pytest.raises(ValidationError, match="negative"):
        per_unit(Decimal(1), -1)
    with pytest.raises(ValidationError, match="inside the billing period"):
        prorate(100, START, END, END + timedelta(seconds=1))
    with pytest.raises(ValidationError, match="ISO 4217"):
        exponent("euro")
