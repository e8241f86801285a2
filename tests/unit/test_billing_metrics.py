"""The MRR engine without a database: the rule on one subscription (trials, coupons, merging),
month arithmetic, ageing buckets, and - on random histories (hypothesis) - that DuckDB's month
closes agree with the rule evaluated directly and that the movements add up to the MRR change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.billing import metrics_frames as mf
from core.billing.metrics import per_account, rate
from core.billing.metrics_frames import DiscountTerms, ItemTerms, SubscriptionTerms
from core.billing.receivables import bucket_of, days_past_due


def at(y: int, m: int, d: int = 1, h: int = 0) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


def test_month_arithmetic_clamps_and_closes_a_microsecond_before_the_next_month() -> None:
    assert mf.shift_months(at(2025, 1, 31, 9), 1) == at(2025, 2, 28, 9)
    assert mf.shift_months(at(2024, 11, 30), 3) == at(2025, 2, 28)
    assert mf.add_months(date(2025, 1, 1), -1) == date(2024, 12, 1)
    assert mf.month_close(date(2025, 12, 1)) == at(2026, 1, 1) - timedelta(microseconds=1)
    assert mf.as_instant(date(2025, 12, 31), end_of_day=True) == mf.month_close(date(2025, 12, 1))
    assert mf.as_instant(date(2025, 12, 31)) == at(2025, 12, 31)
    assert mf.months_between(at(2025, 11, 20), date(2026, 2, 3)) == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]


def test_trial_is_not_counted_until_it_ends_and_intervals_merge() -> None:
    terms = SubscriptionTerms(
        customer_id=1,
        start=at(2025, 3, 10),  # started 1 Feb, trial to 10 Mar
        end=None,
        items=(
            ItemTerms(at(2025, 2, 1), at(2025, 4, 1), 5_000),
            ItemTerms(at(2025, 4, 1), None, 5_000),
        ),
    )
    assert mf.mrr_at(terms, at(2025, 3, 9)) == 0
    assert mf.segments_of(terms) == [(at(2025, 3, 10), None, 5_000)]


def test_coupons_percent_forever_once_and_amount_off_not_below_zero() -> None:
    items = (ItemTerms(at(2025, 1, 1), None, 10_001),)
    forever = DiscountTerms(at(2025, 1, 1), None, 2_000)
    sub = SubscriptionTerms(1, at(2025, 1, 1), None, items, forever)
    assert mf.mrr_at(sub, at(2030, 1, 1)) == 10_001 - 2_000  # 2,000.2 off rounds to 2,000
    once = DiscountTerms(at(2025, 1, 15), mf.shift_months(at(2025, 1, 15), 1), 5_000)
    sub = SubscriptionTerms(1, at(2025, 1, 1), at(2025, 6, 1), items, once)
    assert mf.segments_of(sub) == [
        (at(2025, 1, 1), at(2025, 1, 15), 10_001),
        (at(2025, 1, 15), at(2025, 2, 15), 5_000),  # 5,000.5 off rounds half up
        (at(2025, 2, 15), at(2025, 6, 1), 10_001),
    ]
    big = DiscountTerms(at(2025, 1, 1), None, None, amount_off=50_000)
    assert mf.segments_of(SubscriptionTerms(1, at(2025, 1, 1), None, items, big)) == []


def test_ageing_buckets_count_calendar_days_past_the_due_date() -> None:
    due = at(2025, 6, 30, 23)
    assert days_past_due(due, at(2025, 6, 30, 1)) == 0
    assert [bucket_of(d) for d in (-5, 0, 1, 30, 31, 60, 61, 90, 91)] == [
        "current",
        "current",
        "days_1_30",
        "days_1_30",
        "days_31_60",
        "days_31_60",
        "days_61_90",
        "days_61_90",
        "days_90_plus",
    ]
    assert days_past_due(due, at(2025, 7, 30)) == 30 and days_past_due(None, due) == 0


def test_arpa_rounds_half_up_and_rates_need_a_base() -> None:
    assert per_account(10_001, 2) == 5_001 and per_account(5, 0) == 0
    assert rate(1, 3) == 0.3333
    assert rate(1, 0) != rate(1, 0)  # NaN


# --- random histories -------------------------------------------------------------------------

BASE = at(2025, 1, 1)
MONTHS = [date(2025, m, 1) for m in range(1, 13)]
# instants on a coarse grid of days (some exactly at midnight on the 1st: the boundary case)
instants = st.integers(0, 400).map(lambda d: BASE + timedelta(days=d))


@st.composite
def subscription(draw: st.DrawFn, customer_id: int) -> SubscriptionTerms:
    start = draw(instants)
    end = draw(st.one_of(st.none(), instants.filter(lambda e: e > start)))
    items = []
    for _ in range(draw(st.integers(0, 3))):
        lo = draw(instants)
        hi = draw(st.one_of(st.none(), instants.filter(lambda e, lo=lo: e > lo)))
        items.append(ItemTerms(lo, hi, draw(st.integers(0, 50_000))))
    discount = None
    if draw(st.booleans()):
        lo = draw(instants)
        discount = DiscountTerms(
            lo,
            draw(st.one_of(st.none(), st.just(mf.shift_months(lo, 1)))),
            draw(st.one_of(st.none(), st.integers(1, 10_000))),
            draw(st.integers(1, 30_000)),
        )
    return SubscriptionTerms(customer_id, start, end, tuple(items), discount)


histories = st.lists(
    st.integers(1, 3).flatmap(subscription), min_size=0, max_size=7
)  # several subscriptions may belong to one customer


def expected_at(subs: list[SubscriptionTerms], when: datetime) -> dict[int, int]:
    out: dict[int, int] = {}
    for sub in subs:
        out[sub.customer_id] = out.get(sub.customer_id, 0) + mf.mrr_at(sub, when)
    return {c: v for c, v in out.items() if v}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories, instants)
def test_month_closes_match_the_rule_and_movements_add_up(
    subs: list[SubscriptionTerms], when: datetime
) -> None:
    segments = mf.segments_frame([("EUR", s) for s in subs], "EUR")
    assert mf.snapshot(segments, when) == expected_at(subs, when)
    moves = mf.movements(segments, MONTHS[0], MONTHS[-1])
    before: dict[int, int] = {}  # the previous close, per customer
    ever: set[int] = set()  # customers that paid at some earlier close
    for month, row in moves.iterrows():
        closing = expected_at(subs, mf.month_close(month))
        assert row["mrr"] == sum(closing.values()) and row["customers"] == len(closing)
        assert row["start_mrr"] == sum(before.values())
        parts = row[["new", "expansion", "reactivation", "contraction", "churn"]]
        assert parts.sum() == row["mrr"] - row["start_mrr"]
        # the classification, computed customer by customer
        deltas = {c: closing.get(c, 0) - before.get(c, 0) for c in closing.keys() | before.keys()}
        assert row["new"] == sum(closing[c] for c in closing.keys() - before.keys() - ever)
        assert row["reactivation"] == sum(
            closing[c] for c in (closing.keys() - before.keys()) & ever
        )
        assert row["churn"] == -sum(before[c] for c in before.keys() - closing.keys())
        assert row["churned"] == len(before.keys() - closing.keys())
        both = closing.keys() & before.keys()
        assert row["expansion"] == sum(deltas[c] for c in both if deltas[c] > 0)
        assert row["contraction"] == sum(deltas[c] for c in both if deltas[c] < 0)
        ever |= closing.keys()
        before = closing
