"""Billing at scale: the monthly invoice run over 10,000 customers and 10 million LLM usage events,
with DuckDB over the Parquet usage lake against the same aggregation in plain pandas.

Setup (untimed): a fresh SQLite database in a temporary OMNI_HOME with the demo catalogue,
10,000 customers on Starter / Pro / Enterprise with metered token prices, and 10 million
successful LLM calls in October 2026 written to the LLM usage ledger; the usage lake is then
brought up to date, as the lake refresh does while usage arrives.

Timed, each repeated (median reported):
- the revenue dashboard's queries over the invoiced month (KPIs, 12 months of MRR movements,
  receivables ageing, the LLM-cost margin, whose heavy part is also run in pandas);
- aggregation: the month's usage summed per (customer, metric) from the lake's Parquet files,
  DuckDB (`usage_lake.sum_parts`) vs pandas (read_parquet, filter, groupby);
- the whole invoice run (`run_invoices`: lake refresh, the SQL completeness check, aggregation,
  drafts, bulk writes of 10,000 invoices), first with DuckDB, then - on a copy of the database
  - with the pandas aggregation swapped in; every invoice total must agree to the cent;
- the re-run that finds every draft unchanged (idempotency at scale).

Usage: .venv/bin/python bench/billing.py [--customers 10000] [--events 10000000] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine_info import append_results, load_average, machine  # noqa: E402
from core import clock  # noqa: E402  (the console's one clock)

PERIOD = "2026-10"
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)
TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores UTCDateTime on SQLite


def use_home(home: Path) -> None:
    os.environ["OMNI_HOME"] = str(home)
    os.environ.pop("OMNI_DATABASE_URL", None)
    from core.config import reload_settings
    from core.db import dispose_engines

    dispose_engines()
    reload_settings()


def build_ledger(customers: int, rng: random.Random) -> None:
    """Organisations, billing customers, the catalogue and one subscription each."""
    from sqlalchemy import insert, select

    from core.billing.customers import ensure_customers
    from core.billing.models import Customer, Price, Subscription, SubscriptionItem
    from core.billing.seed import _catalogue
    from core.db import unit_of_work
    from core.orgs.countries import countries
    from core.orgs.models import Organisation

    codes = sorted(countries())
    since = START - timedelta(days=900)
    with unit_of_work() as session:
        session.execute(
            insert(Organisation),
            [
                {
                    "name": f"Bench Customer {i:05d}",
                    "country": rng.choice(codes),
                    "plan": rng.choices(["starter", "pro", "enterprise"], [50, 40, 10])[0],
                    "industry": "Software",
                    "employees": rng.randint(5, 5000),
                    "domain": f"bench{i}.example",
                    "signed_up_at": since + timedelta(days=rng.randint(0, 880)),
                }
                for i in range(customers)
            ],
        )
        ensure_customers(session)
        _catalogue(session)
        prices = {p.lookup_key: p.id for p in session.scalars(select(Price))}
        rows = session.execute(
            select(Customer.id, Customer.currency, Organisation.plan, Organisation.signed_up_at)
            .join(Organisation, Organisation.id == Customer.organisation_id)
            .order_by(Customer.id)
        ).all()
        subs = [
            {
                "customer_id": cid,
                "status": "active",
                "started_at": signed,
                "created_at": signed,
                "updated_at": signed,
            }
            for cid, _, _, signed in rows
        ]
        ids = session.scalars(
            insert(Subscription).returning(Subscription.id, sort_by_parameter_order=True), subs
        ).all()
        items = []
        for sub_id, (_, currency, plan, signed) in zip(ids, rows, strict=True):
            c = currency.lower()
            keys = [f"{plan}-{c}"]
            if plan != "starter":
                keys += [f"llm-input-{c}", f"llm-output-{c}"]
            for key in keys:
                quantity = rng.randint(2, 80) if key.startswith("pro-") else 1
                items.append(
                    {
                        "subscription_id": sub_id,
                        "price_id": prices[key],
                        "quantity": quantity,
                        "started_at": signed,
                    }
                )
        session.execute(insert(SubscriptionItem), items)


def write_usage(db_path: Path, events: int, customers: int, rng: random.Random) -> None:
    """`events` successful LLM calls in the period, straight through sqlite3 (the ORM would
    take minutes for this many rows)."""
    from sqlalchemy.schema import CreateIndex

    from core.db import get_engine
    from core.llm.models import LLMUsage

    span = int((END - START).total_seconds())
    engine = get_engine()
    indexes = list(LLMUsage.__table__.indexes)
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA synchronous=OFF")
    # maintaining eight indexes row by row is most of a bulk load's cost: rebuild them after
    for index in indexes:
        con.execute(f"DROP INDEX {index.name}")
    sql = (
        "INSERT INTO llm_usage (ts, request_id, actor, team, customer_id, alias, deployment, "
        "provider, model, input_tokens, output_tokens, cost_micros, latency_ms, status, "
        "cache_hit) VALUES (?, ?, 'service:product-api', 'product', ?, 'chat', "
        "'openai-gpt-4o-mini', 'openai', 'gpt-4o-mini', ?, ?, ?, 600.0, 'ok', '')"
    )
    chunk = 250_000
    written = 0
    while written < events:
        n = min(chunk, events - written)
        batch = []
        for i in range(n):
            tokens_in = int(rng.expovariate(1 / 900)) + 20
            tokens_out = int(rng.expovariate(1 / 200)) + 5
            ts = START + timedelta(seconds=rng.randrange(span))
            batch.append(
                (
                    ts.strftime(TS_FORMAT),
                    f"b{written + i:031d}",
                    rng.randint(1, customers),
                    tokens_in,
                    tokens_out,
                    (tokens_in * 150_000 + tokens_out * 600_000) // 1_000_000,
                )
            )
        con.executemany(sql, batch)
        con.commit()
        written += n
        print(f"  ... {written:,} usage events written", end="\r", flush=True)
    print()
    for index in indexes:
        con.execute(str(CreateIndex(index).compile(engine)))
    con.commit()
    con.close()


def pandas_sum_parts(
    files: list[str], start: datetime, end: datetime, metrics: tuple[str, ...] | None = None
) -> list[tuple[int, str, int]]:
    """The peer: the same aggregation in plain pandas."""
    import pandas as pd

    if not files:
        return []
    frame = pd.concat(
        [pd.read_parquet(f, columns=["key", "metric", "quantity", "ts"]) for f in files],
        ignore_index=True,
    )
    frame = frame[(frame["ts"] >= pd.Timestamp(start)) & (frame["ts"] < pd.Timestamp(end))]
    if metrics:
        frame = frame[frame["metric"].isin(metrics)]
    grouped = frame.groupby(["key", "metric"], sort=False)["quantity"].sum()
    return [(int(k), str(m), int(q)) for (k, m), q in grouped.items()]


def seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def pandas_cost_by_org(files: list[str], start: datetime, end: datetime) -> dict[int, int]:
    """The peer for the margin report's heavy part: LLM cost per organisation in pandas."""
    import pandas as pd

    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame = frame[
        (frame["metric"] == "llm_cost_micros")
        & (frame["ts"] >= pd.Timestamp(start))
        & (frame["ts"] < pd.Timestamp(end))
    ]
    return {int(k): int(v) for k, v in frame.groupby("key")["quantity"].sum().items()}


def dashboard(finance: Any, files: list[str], rounds: int) -> list[tuple[str, float, float | None]]:
    """The revenue page's queries once the month is invoiced and finalised: (query, DuckDB
    seconds, pandas seconds where the peer applies), medians."""
    from core.billing import margin, metrics, receivables, usage_lake
    from core.billing.invoice_status import finalise_period
    from core.billing.periods import add_months

    finalise_period(finance, START)
    steps: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]] = [
        ("KPI header (MRR, ARR, churn, ARPA, overdue)", lambda: metrics.kpis(finance, END), None),
        (
            "MRR history with movements, 12 months",
            lambda: metrics.mrr_history(finance, add_months(START, -11), START),
            None,
        ),
        ("receivables ageing", lambda: receivables.ar_ageing(finance, END), None),
        (
            "margin per customer and plan, one month",
            lambda: margin.margin(finance, START, END),
            None,
        ),
        (
            "  of which: LLM cost per organisation",
            lambda: usage_lake.sum_parts(files, START, END, ("llm_cost_micros",)),
            lambda: pandas_cost_by_org(files, START, END),
        ),
    ]
    results = []
    for label, ours, peer in steps:
        mine = statistics.median(timed(ours)[0] for _ in range(rounds))
        theirs = statistics.median(timed(peer)[0] for _ in range(rounds)) if peer else None
        results.append((label, mine, theirs))
    return results


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    begin = time.perf_counter()
    result = fn()
    return time.perf_counter() - begin, result


def invoice_totals() -> dict[int, int]:
    from sqlalchemy import select

    from core.billing.models import Invoice
    from core.db import unit_of_work

    with unit_of_work(read_only=True) as session:
        return dict(
            session.execute(
                select(Invoice.customer_id, Invoice.total).where(Invoice.period_start == START)
            ).all()
        )


def clear_invoices() -> None:
    from sqlalchemy import delete

    from core.billing.models import Invoice, InvoiceLine, InvoiceRun
    from core.db import unit_of_work

    with unit_of_work() as session:
        session.execute(delete(InvoiceLine))
        session.execute(delete(Invoice))
        session.execute(delete(InvoiceRun))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="omni-bench-billing-"))
    try:
        run(args, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(args: argparse.Namespace, home: Path) -> None:
    use_home(home)
    from core.auth.actor import Actor
    from core.auth.roles import Role
    from core.billing import invoicing, usage_lake
    from core.billing.catalog import METRICS
    from core.db import unit_of_work
    from core.schema import upgrade

    rng = random.Random(20261126)  # noqa: S311 - reproducible synthetic data
    print(machine())
    setup_start = time.perf_counter()
    upgrade()
    build_ledger(args.customers, rng)
    write_usage(home / "omni.db", args.events, args.customers, rng)
    with unit_of_work() as session:
        manifest = usage_lake.refresh(session)
    files = [str(usage_lake.lake_dir() / p["file"]) for p in manifest["parts"]]
    lake_mb = sum(Path(f).stat().st_size for f in files) / 1e6
    setup_s = time.perf_counter() - setup_start
    print(f"setup {setup_s:.0f} s; lake {lake_mb:.0f} MB in {len(files)} part(s)")

    load_before = load_average()
    billed = tuple(METRICS)
    duck_times, pandas_times = [], []
    duck_rows: list[tuple[int, str, int]] = []
    pandas_rows: list[tuple[int, str, int]] = []
    for _ in range(args.rounds):
        t, duck_rows = timed(lambda: usage_lake.sum_parts(files, START, END, billed))
        duck_times.append(t)
        t, pandas_rows = timed(lambda: pandas_sum_parts(files, START, END, billed))
        pandas_times.append(t)
    agg_equal = sorted(duck_rows) == sorted(pandas_rows)

    finance = Actor("bench", Role.FINANCE)
    run_times, rerun_times, pandas_run_times = [], [], []
    report = None
    duck_totals: dict[int, int] = {}
    for _ in range(args.rounds):
        clear_invoices()
        t, report = timed(lambda: invoicing.run_invoices(finance, PERIOD))
        run_times.append(t)
        duck_totals = invoice_totals()
        t, rerun = timed(lambda: invoicing.run_invoices(finance, PERIOD))
        rerun_times.append(t)
        assert rerun.created == 0 and rerun.unchanged == report.customers
    original = usage_lake.sum_parts
    usage_lake.sum_parts = pandas_sum_parts  # type: ignore[assignment]
    try:
        for _ in range(args.rounds):
            clear_invoices()
            t, _ = timed(lambda: invoicing.run_invoices(finance, PERIOD))
            pandas_run_times.append(t)
    finally:
        usage_lake.sum_parts = original  # type: ignore[assignment]
    totals_equal = invoice_totals() == duck_totals
    clear_invoices()
    invoicing.run_invoices(finance, PERIOD)
    board = dashboard(finance, files, args.rounds)
    load_after = load_average()

    med = statistics.median
    duck, panda = med(duck_times), med(pandas_times)
    run_s, pandas_run_s, rerun_s = med(run_times), med(pandas_run_times), med(rerun_times)
    assert report is not None
    lines = [
        f"## Billing: invoice run at scale ({clock.utcnow():%Y-%m-%d}, bench/billing.py)",
        "",
        f"Machine: {machine()}. {args.customers:,} customers, {args.events:,} LLM usage events "
        f"in {PERIOD} ({args.events * 2:,} metered values: input and output tokens), SQLite; "
        f"usage lake {lake_mb:.0f} MB of Parquet. Median of {args.rounds} rounds.",
        "",
        "| step | DuckDB (project) | pandas (peer) | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| aggregate the month per (customer, metric) | {duck:.2f} s | {panda:.2f} s | "
        f"{panda / duck:.1f}x |",
        f"| whole invoice run ({report.customers:,} invoices drafted) | {run_s:.2f} s | "
        f"{pandas_run_s:.2f} s | {pandas_run_s / run_s:.1f}x |",
        f"| re-run, every draft unchanged | {rerun_s:.2f} s | | |",
        *(
            f"| dashboard: {label} | {mine:.2f} s | "
            + (f"{theirs:.2f} s | {theirs / mine:.1f}x |" if theirs else "| |")
            for label, mine, theirs in board
        ),
        "",
        f"Aggregates identical: {'yes' if agg_equal else 'NO'}; every invoice total equal to "
        f"the cent between the two engines: {'yes' if totals_equal else 'NO'}. Totals: "
        + ", ".join(f"{c} {v / 100:,.2f}" for c, v in sorted(report.total_by_currency.items()))
        + ".",
        f"Target: invoice run under 15 s ({'met' if run_s < 15 else 'missed'}); at least 5x "
        f"pandas: aggregation {panda / duck:.1f}x "
        f"({'met' if panda / duck >= 5 else 'missed'}), whole run {pandas_run_s / run_s:.1f}x "
        "(the run also checks the lake is complete, loads subscriptions and writes the "
        "invoices, which no engine choice speeds up).",
        f"Rounds (s): DuckDB {seconds(duck_times)}; pandas {seconds(pandas_times)}; run "
        f"{seconds(run_times)}; pandas run {seconds(pandas_run_times)}. Load average "
        f"before {load_before}, after {load_after}.",
        "",
    ]
    print("\n".join(lines))
    if not args.no_record:
        append_results(lines)


if __name__ == "__main__":
    main()
