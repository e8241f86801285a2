"""The MRR engine under the revenue dashboards (`core.billing.metrics`).

A subscription's MRR is piecewise constant: it only changes where the subscription, an item or a
coupon starts or ends. So the ledger is read once into a frame of intervals
(customer_id, lo, hi, mrr) and DuckDB joins that frame against month-close instants; every figure
(history, movements, cohorts, a point in time) comes from that one frame, so they always agree.

Rules (Stripe's MRR): licensed prices only (no metered usage, no tax); a year price counts 1/12
(half up); trials are excluded until `trial_end`; a percentage coupon in force reduces MRR, an
amount-off coupon subtracts its amount (never below zero). Dates decide the past; the current
status only decides from `now` on (a status is not historised): a subscription that is not
active/past_due stops counting at `now` (trialing ones with a trial end go by that date). Money
is integer minor units throughout.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.billing import catalog, fx
from core.billing.models import Coupon, Customer, Price, Subscription, SubscriptionItem
from core.billing.pricing import round_minor
from core.clock import utcnow
from core.config import get_settings
from core.errors import ValidationError

COUNTED_STATUSES = ("active", "past_due")
# stands for "no end" in the frames: DuckDB's range join needs a value, not NULL, to use IEJoin
FOREVER = datetime(9999, 12, 31)  # naive UTC, like everything in the frames
SEGMENT_COLUMNS = ["customer_id", "lo", "hi", "mrr"]
_TICK = timedelta(microseconds=1)


# --- months -----------------------------------------------------------------------------------


def month_of(value: date | datetime) -> date:
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date() if value.tzinfo else value.date()
    return value.replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    months, month = [], month_of(first)
    while month <= month_of(last):
        months.append(month)
        month = add_months(month, 1)
    return months


def month_close(month: date) -> datetime:
    """The month's last instant. A change dated exactly at midnight on the 1st belongs to the
    month it opens, so the close is the microsecond before (datetimes have no finer grain)."""
    nxt = add_months(month, 1)
    return datetime(nxt.year, nxt.month, 1, tzinfo=UTC) - _TICK


def shift_months(at: datetime, n: int) -> datetime:
    """`at` plus n calendar months, the day clamped to the target month (31 Jan + 1 = 28 Feb)."""
    target = add_months(at.date().replace(day=1), n)
    last_day = (add_months(target, 1) - timedelta(days=1)).day
    return at.replace(year=target.year, month=target.month, day=min(at.day, last_day))


def as_instant(value: date | datetime, *, end_of_day: bool = False) -> datetime:
    """A UTC datetime from a page's date or datetime. A date is its midnight, or with
    `end_of_day` its last microsecond (an ageing "as of 15 Jul" includes that day's invoices)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    midnight = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return midnight + timedelta(days=1) - _TICK if end_of_day else midnight


def check_currency(currency: str | None) -> str:
    """The currency figures are shown in: the filter one, or the reporting currency."""
    code = (currency or get_settings().billing_reporting_currency).strip().upper()
    if code not in fx.currencies():
        raise ValidationError(
            f"No exchange rate for {code!r}; known: {', '.join(fx.currencies())}."
        )
    return code


# --- the pure rule ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemTerms:
    start: datetime
    end: datetime | None
    monthly: int  # licensed monthly amount, in the subscription's currency


@dataclass(frozen=True)
class DiscountTerms:
    start: datetime
    end: datetime | None
    percent_off_bp: int | None
    amount_off: int = 0  # in the subscription's currency; with amount-off coupons only


@dataclass(frozen=True)
class SubscriptionTerms:
    customer_id: int
    start: datetime  # first instant counted: started_at, or trial_end when later
    end: datetime | None  # first instant no longer counted
    items: tuple[ItemTerms, ...]
    discount: DiscountTerms | None = None


def _within(start: datetime, end: datetime | None, at: datetime) -> bool:
    return start <= at and (end is None or at < end)


def discounted(amount: int, discount: DiscountTerms | None, at: datetime) -> int:
    if discount is None or not _within(discount.start, discount.end, at):
        return amount
    if discount.percent_off_bp is not None:
        # the discount is rounded, then subtracted, as on the invoice
        return amount - round_minor(Decimal(amount) * discount.percent_off_bp / 10_000)
    return max(amount - discount.amount_off, 0)


def mrr_at(terms: SubscriptionTerms, at: datetime) -> int:
    """The definition itself, at one instant (the tests' reference)."""
    if not _within(terms.start, terms.end, at):
        return 0
    amount = sum(i.monthly for i in terms.items if _within(i.start, i.end, at))
    return discounted(amount, terms.discount, at)


def segments_of(terms: SubscriptionTerms) -> list[tuple[datetime, datetime | None, int]]:
    """(lo, hi, mrr) intervals with MRR > 0, adjacent equal ones merged. Every condition of the
    rule is `start <= t < end`, so MRR is constant between consecutive boundaries."""
    bounds = {terms.start}
    for item in terms.items:
        bounds.update(b for b in (item.start, item.end) if b is not None)
    if terms.discount is not None:
        bounds.update(b for b in (terms.discount.start, terms.discount.end) if b is not None)
    cuts = sorted(b for b in bounds if _within(terms.start, terms.end, b))
    out: list[tuple[datetime, datetime | None, int]] = []
    for i, lo in enumerate(cuts):
        hi = cuts[i + 1] if i + 1 < len(cuts) else terms.end
        amount = mrr_at(terms, lo)
        if out and out[-1][2] == amount and out[-1][1] == lo:
            out[-1] = (out[-1][0], hi, amount)
        elif amount > 0:
            out.append((lo, hi, amount))
    return out


# --- reading the ledger -----------------------------------------------------------------------


def _coupon_window(coupon: Coupon, begins: datetime) -> DiscountTerms:
    end = {
        "once": shift_months(begins, 1),
        "repeating": shift_months(begins, coupon.duration_months or 1),
    }.get(coupon.duration)
    return DiscountTerms(begins, end, coupon.percent_off_bp)


def load_terms(
    session: Session, currency: str | None = None, *, now: datetime
) -> list[tuple[str, SubscriptionTerms]]:
    """Every subscription (of customers billed in `currency`, if given) as (currency, terms),
    amounts in the customer's billing currency."""
    prices = {
        p.id: p for p in session.scalars(select(Price).where(Price.scheme.in_(catalog.LICENSED)))
    }
    coupons = {c.id: c for c in session.scalars(select(Coupon))}
    subs = select(
        Subscription.id,
        Subscription.customer_id,
        Subscription.status,
        Subscription.started_at,
        Subscription.trial_end,
        Subscription.ended_at,
        Subscription.coupon_id,
        Subscription.coupon_starts,
        Customer.currency,
    ).join(Customer, Customer.id == Subscription.customer_id)
    items = (
        select(
            SubscriptionItem.subscription_id,
            SubscriptionItem.price_id,
            SubscriptionItem.quantity,
            SubscriptionItem.started_at,
            SubscriptionItem.ended_at,
        )
        .join(Subscription, Subscription.id == SubscriptionItem.subscription_id)
        .join(Customer, Customer.id == Subscription.customer_id)
        .where(SubscriptionItem.price_id.in_(list(prices) or [-1]))
    )
    if currency is not None:
        subs, items = (
            subs.where(Customer.currency == currency),
            items.where(Customer.currency == currency),
        )
    monthly: dict[tuple[int, int, str], int] = {}

    def amount(price_id: int, quantity: int, target: str) -> int:
        key = (price_id, quantity, target)
        if key not in monthly:
            price = prices[price_id]
            value = catalog.charge(price, quantity)
            if price.interval == "year":
                value = round_minor(Decimal(value) / 12)
            monthly[key] = fx.convert(value, price.currency, target)
        return monthly[key]

    by_sub: dict[int, list[tuple[int, int, datetime, datetime | None]]] = defaultdict(list)
    for sub_id, price_id, quantity, started, ended in session.execute(items):
        by_sub[sub_id].append((price_id, quantity, started, ended))
    out = []
    for sub in session.execute(subs):
        cur = sub.currency
        # a trial is excluded by its end date already; a "trialing" status still set after it
        # only means the activation job has not run yet, and must not read as churn
        counted = sub.status in COUNTED_STATUSES or (sub.status == "trialing" and sub.trial_end)
        ends = [e for e in (sub.ended_at, None if counted else now) if e]
        discount = None
        coupon = coupons.get(sub.coupon_id) if sub.coupon_id else None
        if coupon is not None:
            discount = _coupon_window(coupon, sub.coupon_starts or sub.started_at)
            if coupon.amount_off is not None:
                off = fx.convert(coupon.amount_off, coupon.currency or cur, cur)
                discount = DiscountTerms(discount.start, discount.end, None, off)
        terms = SubscriptionTerms(
            sub.customer_id,
            max(sub.started_at, sub.trial_end) if sub.trial_end else sub.started_at,
            min(ends) if ends else None,
            tuple(ItemTerms(s, e, amount(p, q, cur)) for p, q, s, e in by_sub.get(sub.id, [])),
            discount,
        )
        out.append((cur, terms))
    return out


def _naive(at: datetime | None) -> datetime:
    return FOREVER if at is None else at.astimezone(UTC).replace(tzinfo=None)


def segments_frame(terms: Sequence[tuple[str, SubscriptionTerms]], target: str) -> pd.DataFrame:
    """The interval frame DuckDB works on, amounts converted to `target` (per interval)."""
    rows = [
        (t.customer_id, _naive(lo), _naive(hi), fx.convert(mrr, cur, target))
        for cur, t in terms
        for lo, hi, mrr in segments_of(t)
    ]
    frame = pd.DataFrame(rows, columns=SEGMENT_COLUMNS)
    return frame.astype(
        {"customer_id": "int64", "lo": "datetime64[us]", "hi": "datetime64[us]", "mrr": "int64"}
    )


def load_segments(
    session: Session, currency: str | None = None, *, now: datetime | None = None
) -> tuple[pd.DataFrame, str]:
    """(interval frame, the currency its amounts are in) for `currency` or everything."""
    target = check_currency(currency)
    terms = load_terms(session, target if currency else None, now=now or utcnow())
    return segments_frame(terms, target), target


# --- DuckDB -----------------------------------------------------------------------------------

_SNAPSHOT = """
    SELECT s.customer_id, m.idx, CAST(SUM(s.mrr) AS BIGINT) AS mrr
    FROM segments s JOIN instants m ON s.lo <= m.t AND s.hi > m.t
    GROUP BY s.customer_id, m.idx
"""


_duck: duckdb.DuckDBPyConnection | None = None
_duck_lock = threading.Lock()


def query(sql: str, **frames: pd.DataFrame) -> pd.DataFrame:
    """Run `sql` in in-process DuckDB over the given frames. Opening a database costs ~15 ms, a
    cursor on an open one ~1 ms; each call gets its own cursor, so the frames it registers are
    its own and concurrent sessions (Streamlit threads) do not share state."""
    global _duck
    with _duck_lock:
        if _duck is None:
            _duck = duckdb.connect()
        con = _duck.cursor()
    try:
        for name, frame in frames.items():
            con.register(name, frame)
        return con.execute(sql).df()
    finally:
        con.close()


def _instants(times: Sequence[datetime]) -> pd.DataFrame:
    frame = pd.DataFrame({"idx": range(len(times)), "t": [_naive(t) for t in times]})
    return frame.astype({"idx": "int64", "t": "datetime64[us]"})


def snapshot(segments: pd.DataFrame, at: datetime) -> dict[int, int]:
    """MRR per customer at one instant (customers with none are absent)."""
    rows = query(_SNAPSHOT, segments=segments, instants=_instants([at]))
    return {int(c): int(m) for c, m in zip(rows["customer_id"], rows["mrr"], strict=True)}


def customer_months(segments: pd.DataFrame, last: date) -> tuple[pd.DataFrame, list[date]]:
    """(frame, months): one row per customer that ever paid and month close, from the month
    before the first interval through `last`: customer_id, idx (into months), mrr, prev (MRR at
    the previous close) and paid_before (MRR > 0 at any earlier close: a return is a
    reactivation, not a new customer)."""
    first = month_of(segments["lo"].min()) if len(segments) else month_of(last)
    months = months_between(add_months(min(first, month_of(last)), -1), last)
    instants = _instants([month_close(m) for m in months])
    # only the constant _SNAPSHOT is spliced in
    sql = f"""
        WITH snaps AS ({_SNAPSHOT}),
        paying AS (SELECT DISTINCT customer_id FROM snaps WHERE mrr > 0),
        grid AS (
            SELECT p.customer_id, m.idx, CAST(COALESCE(s.mrr, 0) AS BIGINT) AS mrr
            FROM paying p CROSS JOIN instants m
            LEFT JOIN snaps s ON s.customer_id = p.customer_id AND s.idx = m.idx
        )
        SELECT customer_id, idx, mrr,
            CAST(COALESCE(LAG(mrr) OVER w, 0) AS BIGINT) AS prev,
            COALESCE(BOOL_OR(mrr > 0) OVER (
                w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false) AS paid_before
        FROM grid
        WINDOW w AS (PARTITION BY customer_id ORDER BY idx)
    """  # noqa: S608
    return query(sql, segments=segments, instants=instants), months


# Movements between consecutive closes, per customer, summed per month. Churn and contraction
# are negative, so the five always add up to mrr - start_mrr.
_MOVEMENTS = """
    SELECT idx,
        CAST(SUM(mrr) AS BIGINT) AS mrr,
        COUNT(*) FILTER (WHERE mrr > 0) AS customers,
        CAST(SUM(prev) AS BIGINT) AS start_mrr,
        COUNT(*) FILTER (WHERE prev > 0) AS start_customers,
        CAST(COALESCE(SUM(mrr) FILTER (WHERE prev = 0 AND NOT paid_before), 0) AS BIGINT) AS new,
        CAST(COALESCE(SUM(mrr - prev) FILTER (WHERE prev > 0 AND mrr > prev), 0) AS BIGINT)
            AS expansion,
        CAST(COALESCE(SUM(mrr - prev) FILTER (WHERE mrr > 0 AND mrr < prev), 0) AS BIGINT)
            AS contraction,
        CAST(COALESCE(SUM(-prev) FILTER (WHERE prev > 0 AND mrr = 0), 0) AS BIGINT) AS churn,
        CAST(COALESCE(SUM(mrr) FILTER (WHERE prev = 0 AND paid_before), 0) AS BIGINT)
            AS reactivation,
        COUNT(*) FILTER (WHERE prev > 0 AND mrr = 0) AS churned
    FROM months GROUP BY idx
"""

MOVEMENT_COLUMNS = [
    "mrr",
    "customers",
    "start_mrr",
    "start_customers",
    "new",
    "expansion",
    "contraction",
    "churn",
    "reactivation",
    "churned",
]


def movements(segments: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    """Per month in [first, last]: MOVEMENT_COLUMNS, indexed by the month (first day)."""
    per_customer, months = customer_months(segments, last)
    sums = query(_MOVEMENTS, months=per_customer)
    sums.index = [months[i] for i in sums["idx"]]
    wanted = months_between(first, last)
    return sums.reindex(wanted, fill_value=0)[MOVEMENT_COLUMNS].astype("int64")
