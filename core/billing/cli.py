"""`omni billing ...`: the monthly invoice run and finalisation (for a scheduler), usage import,
the usage-lake refresh, and the Stripe sync under `omni billing stripe`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.billing.stripe.cli import stripe_app
from core.cli_support import cli_actor, reported

billing_app = typer.Typer(help="Billing: invoices, usage, Stripe.", no_args_is_help=True)
billing_app.add_typer(stripe_app, name="stripe")


def _money(totals: dict[str, int]) -> str:
    from core.billing.formatting import money

    return ", ".join(money(v, c) for c, v in sorted(totals.items())) or "nothing"


@billing_app.command("run")
def run(period: Annotated[str, typer.Argument(help="the month to bill, YYYY-MM")]) -> None:
    """Draft the invoices of a month that has ended; safe to re-run (no duplicates)."""
    from core.billing.invoicing import run_invoices

    with reported():
        report = run_invoices(cli_actor(), period)
    typer.echo(
        f"{report.period}: {report.customers} invoices; {report.created} created, "
        f"{report.updated} updated, {report.unchanged} unchanged, {report.finalised_skipped} "
        f"already finalised. Totals: {_money(report.total_by_currency)}."
    )


@billing_app.command("finalise")
def finalise(period: Annotated[str, typer.Argument(help="YYYY-MM")]) -> None:
    """Finalise (number and issue) every draft invoice of a month."""
    from core.billing.invoice_status import finalise_period
    from core.billing.periods import parse_period

    with reported():
        start, _ = parse_period(period)
        count = finalise_period(cli_actor(), start)
    typer.echo(f"Finalised {count} invoice(s) of {period}.")


@billing_app.command("import-usage")
def import_usage(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import usage events from a CSV (event_id, customer_id, metric, quantity, timestamp)."""
    from core.billing.usage import import_usage_csv

    with reported():
        report = import_usage_csv(cli_actor(), path.read_bytes(), path.name)
    typer.echo(
        f"{report.rows} rows: {report.added} added, {report.already_imported} already imported."
    )


@billing_app.command("refresh-lake")
def refresh_lake() -> None:
    """Copy new usage into the Parquet usage lake (run it often; invoice runs also do)."""
    from core.billing.usage_lake import refresh
    from core.db import unit_of_work

    with reported(), unit_of_work() as session:
        manifest = refresh(session)
    typer.echo(f"Usage lake up to date: {len(manifest['parts'])} part file(s).")
