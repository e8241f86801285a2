"""Revenue metrics for the billing dashboards: MRR and its history with movements, cohort
retention and the header KPIs. Margin is in `core.billing.margin`, receivables ageing in
`core.billing.receivables`; the MRR engine they share is `core.billing.metrics_frames`.

Every figure is in one currency: with `currency` given, only customers billed in it; without, all
customers converted to the reporting currency (`fx.convert`, per subscription interval). Money is
integer minor units; only the rates are floats, rounded for display.

A month's row describes the month's close (its last instant): `mrr` is what is in force then, and
the movements are the changes per customer between the previous close and this one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing import metrics_frames as mf
from core.billing.receivables import ageing
from core.clock import utcnow
from core.db import unit_of_work

HISTORY_COLUMNS = [
    "month",
    "mrr",
    "arr",
    "customers",
    "arpa",
    "new",
    "expansion",
    "contraction",
    "churn",
    "reactivation",
    "net_new",
    "logo_churn_rate",
    "revenue_churn_rate",
]
COHORT_COLUMNS = [
    "cohort",
    "cohort_label",
    "months_since",
    "cohort_size",
    "customers",
    "logo_retention",
    "cohort_mrr",
    "mrr",
    "revenue_retention",
]
_ACTION = "billing.metrics.read"


def _read(actor: Actor) -> None:
    require(actor, Permission.BILLING_READ, action=_ACTION)


def per_account(mrr: int, accounts: int) -> int:
    """MRR / accounts in whole minor units, half up (0 without accounts)."""
    return (2 * mrr + accounts) // (2 * accounts) if accounts else 0


def rate(part: int, whole: int) -> float:
    """A share for display (4 decimals); NaN where there is nothing to divide by."""
    return round(part / whole, 4) if whole else math.nan


# --- session level (the benchmark reuses these) ------------------------------------------------


def mrr_by_customer_at(
    session: Session, at: datetime, currency: str | None = None, *, now: datetime | None = None
) -> dict[int, int]:
    """MRR per customer id at instant `at` (customers without MRR are absent)."""
    segments, _ = mf.load_segments(session, currency, now=now)
    return mf.snapshot(segments, at)


def history_frame(
    session: Session,
    start: date | datetime,
    end: date | datetime,
    currency: str | None = None,
    *,
    now: datetime | None = None,
) -> pd.DataFrame:
    segments, target = mf.load_segments(session, currency, now=now)
    moves = mf.movements(segments, mf.month_of(start), mf.month_of(end))
    frame = moves.reset_index(names="month")
    frame["arr"] = frame["mrr"] * 12
    frame["arpa"] = [
        per_account(int(m), int(c)) for m, c in zip(moves["mrr"], moves["customers"], strict=True)
    ]
    frame["net_new"] = frame["mrr"] - frame["start_mrr"]
    frame["logo_churn_rate"] = [
        rate(int(n), int(s))
        for n, s in zip(moves["churned"], moves["start_customers"], strict=True)
    ]
    frame["revenue_churn_rate"] = [
        rate(-int(c) - int(k), int(s))
        for c, k, s in zip(moves["churn"], moves["contraction"], moves["start_mrr"], strict=True)
    ]
    frame = frame[HISTORY_COLUMNS].copy()
    frame.attrs["currency"] = target
    return frame


def cohort_frame(
    session: Session,
    start: date | datetime,
    end: date | datetime,
    currency: str | None = None,
    *,
    now: datetime | None = None,
) -> pd.DataFrame:
    segments, target = mf.load_segments(session, currency, now=now)
    first, last = mf.month_of(start), mf.month_of(end)
    per_customer, months = mf.customer_months(segments, last)
    cells = mf.query(
        """
        WITH first_paid AS (
            SELECT customer_id, MIN(idx) AS c0 FROM months WHERE mrr > 0 GROUP BY customer_id
        )
        SELECT f.c0 AS cohort_idx, m.idx - f.c0 AS months_since,
            COUNT(*) FILTER (WHERE m.mrr > 0) AS customers, CAST(SUM(m.mrr) AS BIGINT) AS mrr
        FROM months m JOIN first_paid f USING (customer_id)
        WHERE m.idx >= f.c0
        GROUP BY f.c0, m.idx - f.c0
        ORDER BY cohort_idx, months_since
        """,
        months=per_customer,
    )
    cells["cohort"] = [months[int(i)] for i in cells["cohort_idx"]]
    cells = cells[(cells["cohort"] >= first) & (cells["cohort"] <= last)].reset_index(drop=True)
    base = cells[cells["months_since"] == 0].set_index("cohort")
    cells["cohort_size"] = cells["cohort"].map(base["customers"]).astype("int64")
    cells["cohort_mrr"] = cells["cohort"].map(base["mrr"]).astype("int64")
    cells["cohort_label"] = [m.strftime("%Y-%m") for m in cells["cohort"]]
    cells["logo_retention"] = [
        rate(int(c), int(s)) for c, s in zip(cells["customers"], cells["cohort_size"], strict=True)
    ]
    cells["revenue_retention"] = [
        rate(int(m), int(s)) for m, s in zip(cells["mrr"], cells["cohort_mrr"], strict=True)
    ]
    cells = cells.astype({"months_since": "int64", "customers": "int64", "mrr": "int64"})
    frame = cells[COHORT_COLUMNS].reset_index(drop=True)
    frame.attrs["currency"] = target
    return frame


def cohort_matrix(cohorts: pd.DataFrame, value: str = "logo_retention") -> pd.DataFrame:
    """The heatmap grid: one row per cohort label, one column per month since start."""
    return cohorts.pivot(index="cohort_label", columns="months_since", values=value)


@dataclass(frozen=True)
class Kpis:
    currency: str
    at: datetime
    mrr: int
    arr: int
    customers: int  # paying accounts
    arpa: int
    net_new_this_month: int  # since the close of last month
    net_new_last_month: int
    logo_churn_last_month: float  # NaN when nobody was paying at the start of last month
    revenue_churn_last_month: float
    ar_overdue: int


def kpis_at(
    session: Session, at: datetime, currency: str | None = None, *, now: datetime | None = None
) -> Kpis:
    segments, target = mf.load_segments(session, currency, now=now)
    by_customer = mf.snapshot(segments, at)
    mrr, customers = sum(by_customer.values()), len(by_customer)
    last_month = mf.add_months(mf.month_of(at), -1)
    moves = mf.movements(segments, last_month, last_month).iloc[0]
    logo = rate(int(moves["churned"]), int(moves["start_customers"]))
    revenue = rate(-int(moves["churn"]) - int(moves["contraction"]), int(moves["start_mrr"]))
    receivables = ageing(session, at, currency)
    return Kpis(
        currency=target,
        at=at,
        mrr=mrr,
        arr=12 * mrr,
        customers=customers,
        arpa=per_account(mrr, customers),
        net_new_this_month=mrr - int(moves["mrr"]),
        net_new_last_month=int(moves["mrr"]) - int(moves["start_mrr"]),
        logo_churn_last_month=logo,
        revenue_churn_last_month=revenue,
        ar_overdue=receivables.totals["overdue"],
    )


# --- actor level (pages) -----------------------------------------------------------------------


def mrr_history(
    actor: Actor, start: date | datetime, end: date | datetime, currency: str | None = None
) -> pd.DataFrame:
    """One row per calendar month from start's month to end's month (both included), at the
    month's close: HISTORY_COLUMNS. `month` is the month's first day (a `date`); money in minor
    units of `frame.attrs["currency"]`; churn and contraction are negative; the rates are floats
    (NaN when nobody was paying at the start of the month)."""
    _read(actor)
    with unit_of_work(read_only=True) as session:
        return history_frame(session, start, end, currency)


def cohort_retention(
    actor: Actor, start: date | datetime, end: date | datetime, currency: str | None = None
) -> pd.DataFrame:
    """Long form, one row per cohort (month of first paid MRR within [start, end]) and month since
    then up to end's month: COHORT_COLUMNS. `cohort_matrix(frame)` gives the heatmap grid."""
    _read(actor)
    with unit_of_work(read_only=True) as session:
        return cohort_frame(session, start, end, currency)


def kpis(actor: Actor, at: date | datetime | None = None, currency: str | None = None) -> Kpis:
    """The dashboard header at `at` (default now; a date means the end of that day)."""
    _read(actor)
    when = utcnow() if at is None else mf.as_instant(at, end_of_day=True)
    with unit_of_work(read_only=True) as session:
        return kpis_at(session, when, currency)
